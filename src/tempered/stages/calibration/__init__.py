"""Calibration stage (workflow/rules/calibration.smk): temperature scaling per model, its report."""
