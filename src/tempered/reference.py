"""Published numbers our stage tables and figures sit beside: the values of workflow/claims.yaml, which cites each
paper in full and names each number's table or section (tests/unit/test_claims.py checks that the two agree)."""

# Papernot et al. 2016 (S&P): JSMA success rate on MNIST by distillation temperature, as quoted by Carlini &
# Wagner 2016 ("91% at T=1, 24% at T=5, 0.5% at T=100"; T=1 here is a student distilled at T=1).
PAPERNOT_JSMA_SUCCESS = {1: 0.91, 5: 0.24, 100: 0.005}
# Papernot et al. 2016 abstract and section V: undistilled -> distilled JSMA success and robustness.
PAPERNOT_JSMA_SUCCESS_BASE = 0.9889
PAPERNOT_JSMA_SUCCESS_DISTILLED = 0.0134
PAPERNOT_ROBUSTNESS = {"base": 0.0155, "distilled": 0.1408}   # mean fraction of features JSMA must change
PAPERNOT_ACCURACY = {"base": 0.9951, "distilled_T20": 0.9905}
# Carlini & Wagner 2016/2017: L2 attack on MNIST, 100% success; mean L2 distance undistilled vs T=100.
CW_L2_MEAN = {"base": 1.76, "distilled_T100": 2.2}
CW_SUCCESS = 1.0

# Szegedy et al. 2014, "Intriguing properties of neural networks", Tables 1-4 and section 4.3 (fractions, not %).
# Table 1: train error, test error, average minimum distortion.
SZEGEDY_TABLE1 = {
    "FC10(1e-4)": {"train_error": 0.067, "test_error": 0.074, "distortion": 0.062},
    "FC10(1e-2)": {"train_error": 0.10, "test_error": 0.094, "distortion": 0.1},
    "FC10(1)": {"train_error": 0.212, "test_error": 0.20, "distortion": 0.14},
    "FC100-100-10": {"train_error": 0.0, "test_error": 0.0164, "distortion": 0.058},
    "FC200-200-10": {"train_error": 0.0, "test_error": 0.0154, "distortion": 0.065},
    "AE400-10": {"train_error": 0.0057, "test_error": 0.019, "distortion": 0.086},
}
# Table 2: error of each column model on the examples made for each row model, and on Gaussian noise.
_T2_COLUMNS = ("FC10(1e-4)", "FC10(1e-2)", "FC10(1)", "FC100-100-10", "FC200-200-10", "AE400-10")
SZEGEDY_TABLE2 = {row: dict(zip(_T2_COLUMNS, (v / 100 for v in values), strict=True)) for row, values in {
    "FC10(1e-4)": (100, 11.7, 22.7, 2, 3.9, 2.7),
    "FC10(1e-2)": (87.1, 100, 35.2, 35.9, 27.3, 9.8),
    "FC10(1)": (71.9, 76.2, 100, 48.1, 47, 34.4),
    "FC100-100-10": (28.9, 13.7, 21.1, 100, 6.6, 2),
    "FC200-200-10": (38.2, 14, 23.8, 20.3, 100, 2.7),
    "AE400-10": (23.4, 16, 24.8, 9.4, 6.6, 100),
    "sigma_0.1": (5.0, 10.1, 18.3, 0, 0, 0.8),
    "sigma_0.3": (15.6, 11.3, 22.7, 5, 4.3, 3.1),
}.items()}
# Table 3: error on P1, P2 and test, and distortion, of the models trained on one half.
SZEGEDY_TABLE3 = {
    "FC100-100-10": {"p1": 0.0, "p2": 0.024, "test": 0.02, "distortion": 0.062},
    "FC123-456-10": {"p1": 0.0, "p2": 0.025, "test": 0.021, "distortion": 0.059},
    "FC100-100-10'": {"p1": 0.023, "p2": 0.0, "test": 0.021, "distortion": 0.058},
}
# Table 4: cross-training-set transfer; rows: examples made for a model, magnified to 0.1, or Gaussian noise.
_T4_COLUMNS = ("FC100-100-10", "FC123-456-10", "FC100-100-10'")
SZEGEDY_TABLE4 = {row: dict(zip(_T4_COLUMNS, (v / 100 for v in values), strict=True)) for row, values in {
    "FC100-100-10": (100, 26.2, 5.9),
    "FC123-456-10": (6.25, 100, 5.1),
    "FC100-100-10'": (8.2, 8.2, 100),
    "sigma_0.06": (2.2, 2.6, 2.4),
    "magnified FC100-100-10": (100, 98, 43),
    "magnified FC123-456-10": (96, 100, 22),
    "magnified FC100-100-10'": (27, 50, 100),
    "sigma_0.1": (2.6, 2.8, 2.7),
}.items()}
# Section 4.3: test error of FC100-100-10 by regulariser ("below 1.2%" with the adversarial pool, an upper bound).
SZEGEDY_ADVERSARIAL_TRAINING = {"weight decay": 0.016, "dropout": 0.013, "adversarial pool": 0.012}
