"""Out-of-distribution and misclassification detection: scores and metrics."""
