"""Figures stage (workflow/rules/figures.smk): training curves."""
