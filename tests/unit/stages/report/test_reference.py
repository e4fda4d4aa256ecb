"""tempered.stages.report.reference builds the stage tables' and figures' published numbers from workflow/claims.yaml: a
known-answer test against the values the papers print (copied once from the papers' tables, in the shapes the
stage code quotes them; this is the expected answer, not a second source the code reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tempered import paths
from tempered.config import ConfigError
from tempered.stages.report import reference

REPO_ROOT = Path(__file__).resolve().parents[4]
CLAIMS = REPO_ROOT / paths.CLAIMS

T2_COLUMNS = ("FC10(1e-4)", "FC10(1e-2)", "FC10(1)", "FC100-100-10", "FC200-200-10", "AE400-10")
T4_COLUMNS = ("FC100-100-10", "FC123-456-10", "FC100-100-10'")
# Szegedy et al. 2014, Table 2 and Table 4 in %, as printed.
TABLE2_PERCENT = {
    "FC10(1e-4)": (100, 11.7, 22.7, 2, 3.9, 2.7),
    "FC10(1e-2)": (87.1, 100, 35.2, 35.9, 27.3, 9.8),
    "FC10(1)": (71.9, 76.2, 100, 48.1, 47, 34.4),
    "FC100-100-10": (28.9, 13.7, 21.1, 100, 6.6, 2),
    "FC200-200-10": (38.2, 14, 23.8, 20.3, 100, 2.7),
    "AE400-10": (23.4, 16, 24.8, 9.4, 6.6, 100),
    "sigma_0.1": (5.0, 10.1, 18.3, 0, 0, 0.8),
    "sigma_0.3": (15.6, 11.3, 22.7, 5, 4.3, 3.1),
}
TABLE4_PERCENT = {
    "FC100-100-10": (100, 26.2, 5.9),
    "FC123-456-10": (6.25, 100, 5.1),
    "FC100-100-10'": (8.2, 8.2, 100),
    "sigma_0.06": (2.2, 2.6, 2.4),
    "magnified FC100-100-10": (100, 98, 43),
    "magnified FC123-456-10": (96, 100, 22),
    "magnified FC100-100-10'": (27, 50, 100),
    "sigma_0.1": (2.6, 2.8, 2.7),
}
TABLE1 = {
    "FC10(1e-4)": {"train_error": 0.067, "test_error": 0.074, "distortion": 0.062},
    "FC10(1e-2)": {"train_error": 0.10, "test_error": 0.094, "distortion": 0.1},
    "FC10(1)": {"train_error": 0.212, "test_error": 0.20, "distortion": 0.14},
    "FC100-100-10": {"train_error": 0.0, "test_error": 0.0164, "distortion": 0.058},
    "FC200-200-10": {"train_error": 0.0, "test_error": 0.0154, "distortion": 0.065},
    "AE400-10": {"train_error": 0.0057, "test_error": 0.019, "distortion": 0.086},
}
TABLE3 = {
    "FC100-100-10": {"p1": 0.0, "p2": 0.024, "test": 0.02, "distortion": 0.062},
    "FC123-456-10": {"p1": 0.0, "p2": 0.025, "test": 0.021, "distortion": 0.059},
    "FC100-100-10'": {"p1": 0.023, "p2": 0.0, "test": 0.021, "distortion": 0.058},
}


def _fractions(percent: dict, columns: tuple[str, ...]) -> dict:
    return {row: {c: pytest.approx(v / 100, abs=1e-12) for c, v in zip(columns, values, strict=True)}
            for row, values in percent.items()}


def test_the_published_numbers_are_the_papers():
    paper = reference.published(CLAIMS)
    assert paper.papernot_jsma_success == {1: 0.91, 5: 0.24, 100: 0.005}
    assert paper.papernot_jsma_success_base == 0.9889
    assert paper.papernot_jsma_success_distilled == 0.0134
    assert paper.papernot_robustness == {"base": 0.0155, "distilled": 0.1408}
    assert paper.papernot_accuracy == {"base": 0.9951, "distilled_T20": 0.9905}
    assert paper.cw_l2_mean == {"base": 1.76, "distilled_T100": 2.2}
    assert paper.cw_success == 1.0
    assert paper.szegedy_table1 == TABLE1
    assert paper.szegedy_table3 == TABLE3
    # Same rows and columns in the same order: the stage tables and heatmap list them in this order.
    assert [(r, list(c)) for r, c in paper.szegedy_table2.items()] == [(r, list(T2_COLUMNS)) for r in TABLE2_PERCENT]
    assert [(r, list(c)) for r, c in paper.szegedy_table4.items()] == [(r, list(T4_COLUMNS)) for r in TABLE4_PERCENT]
    assert paper.szegedy_table2 == _fractions(TABLE2_PERCENT, T2_COLUMNS)
    assert paper.szegedy_table4 == _fractions(TABLE4_PERCENT, T4_COLUMNS)
    assert paper.szegedy_adversarial_training == {"weight decay": 0.016, "dropout": 0.013, "adversarial pool": 0.012}
    assert paper.hendrycks_msp_mnist == {"omniglot": (96, 97, 96), "gaussian_noise_unclipped": (90, 90, 91),
                                         "uniform_noise": (99, 99, 98)}
    assert paper.hendrycks_misclassification == 97


def test_a_published_number_is_read_from_the_claims_file(tmp_path):
    """Change a claim's number and the stage tables' number changes with it: the claims file is the one copy."""
    edited = tmp_path / "claims.yaml"
    edited.write_text(CLAIMS.read_text().replace('published: 1.76,', 'published: 1.5,', 1))
    assert reference.published(edited).cw_l2_mean["base"] == 1.5
    assert reference.published(CLAIMS).cw_l2_mean["base"] == 1.76


def test_the_models_the_ood_claims_read_come_from_the_claims_file(tmp_path):
    """The OOD report names the model Hendrycks & Gimpel's claims read and DeVries & Taylor's baseline from the
    claims, so a claim moved to another model is named as it is measured."""
    assert reference.published(CLAIMS).hendrycks_model == "hendrycks_mlp"
    assert reference.published(CLAIMS).devries_baseline_model == "cnn"
    edited = tmp_path / "claims.yaml"
    text = CLAIMS.read_text()
    assert text.count('model: "hendrycks_mlp"') >= 1 and 'versus: {model: "cnn"' in text
    edited.write_text(text.replace('model: "hendrycks_mlp"', 'model: "cnn"')
                      .replace('versus: {model: "cnn"', 'versus: {model: "hendrycks_mlp"'))
    assert reference.published(edited).hendrycks_model == "cnn"
    assert reference.published(edited).devries_baseline_model == "hendrycks_mlp"


def test_a_missing_claim_names_its_id(tmp_path):
    edited = tmp_path / "claims.yaml"
    text = CLAIMS.read_text()
    edited.write_text("\n".join(line for line in text.splitlines() if '"cw.l2.T100"' not in line) + "\n")
    with pytest.raises(KeyError, match="cw.l2.T100"):
        reference.published(edited)


def test_a_malformed_claims_file_fails_as_a_config_error(tmp_path):
    edited = tmp_path / "claims.yaml"
    edited.write_text("claims: []\n")
    with pytest.raises(ConfigError):
        reference.published(edited)
