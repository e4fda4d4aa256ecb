"""Attack stage (workflow/rules/attacks.smk): attacks, input gradients, the defensive-distillation report."""
