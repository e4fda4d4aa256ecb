"""Out-of-distribution stage (workflow/rules/ood.smk): the OOD sets, scoring per model, the OOD report."""
