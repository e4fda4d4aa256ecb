"""Evaluation stage (workflow/rules/evaluate.smk): held-out logits and metrics, summaries across seeds."""
