"""MNIST and Fashion-MNIST: verified raw files, parsed arrays, and the train/validation/P1/P2 split."""
