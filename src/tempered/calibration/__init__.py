"""Post-hoc calibration (Guo et al. 2017): temperature scaling and the calibration metrics."""
