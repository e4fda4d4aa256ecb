"""Report stage (workflow/rules/report.smk): claims against the published numbers, REPORT.md, the summary
figure."""
