"""Training stage (workflow/rules/train.smk): every model by its configured method, reused twins, soft labels."""
