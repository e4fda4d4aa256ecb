"""Membership-inference stage (workflow/rules/membership.smk): roles, shadows, attacks, the report."""
