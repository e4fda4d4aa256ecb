"""Data stage (workflow/rules/data.smk): fetch the datasets, split MNIST."""
