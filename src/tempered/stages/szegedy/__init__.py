"""Szegedy et al. 2014 stage (workflow/rules/szegedy.smk): L-BFGS examples, transfer tables, the report."""
