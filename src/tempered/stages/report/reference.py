"""Published numbers our stage tables and figures print beside ours, read from workflow/claims.yaml (the one copy:
it cites each paper in full and names each number's table or section) and looked up there by claim id.

`published()` reads the file once per path and arranges its numbers as the stage code quotes them: by the
paper's row labels (Szegedy et al. 2014), by temperature or role (Papernot et al. 2016, Carlini & Wagner). The few
numbers below that are not claims yet stay here, each with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tempered import paths
from tempered.stages.report.claims import load_claims

# Szegedy et al. 2014: the paper's row labels and the model names the claim ids use.
_T1_MODELS = {"FC10(1e-4)": "fc10_1em4", "FC10(1e-2)": "fc10_1em2", "FC10(1)": "fc10_1",
              "FC100-100-10": "fc100_100_10", "FC200-200-10": "fc200_200_10", "AE400-10": "ae400_10"}
_T2_NOISE_ROWS = ("sigma_0.1", "sigma_0.3")
_T3_MODELS = {"FC100-100-10": "fc100_100_10_p1", "FC123-456-10": "fc123_456_10_p1",
              "FC100-100-10'": "fc100_100_10_p2"}
# Not a claim yet: the diagonal of Tables 2 and 4 (100%, examples made for a model fool that model by
# construction), which the tables print but no rule judges.
_OWN_EXAMPLES_ERROR = 1.0
# Not a claim yet: section 4.3's "1.6%" test error with weight decay alone; it is Table 1's FC100-100-10 test error
# (1.64%, claim szegedy.t1.fc100_100_10.test_error), judged there once, and the table prints the rounded 1.6%.
_SZEGEDY_WEIGHT_DECAY_TEST_ERROR = 0.016
# Hendrycks & Gimpel 2017 (MNIST, MSP): the OOD sets named by their claim id and by our ood.datasets name.
_HENDRYCKS_SETS = {"omniglot": "omniglot", "gaussian": "gaussian_noise_unclipped", "uniform": "uniform_noise"}
# Not claims yet: their AUPR-in / AUPR-out in % for the same sets (the OOD report prints them beside the AUROC).
_HENDRYCKS_AUPR = {"omniglot": (97, 96), "gaussian_noise_unclipped": (90, 91), "uniform_noise": (99, 98)}


@dataclass(frozen=True)
class Reference:
    """The published numbers, shaped as the stage tables and figures quote them (fractions, not %)."""

    # Papernot et al. 2016: JSMA success on MNIST by distillation temperature, as quoted by Carlini & Wagner 2016
    # ("91% at T=1, 24% at T=5, 0.5% at T=100"; T=1 is a student distilled at T=1); undistilled and distilled
    # success, robustness (mean fraction of features JSMA must change) and accuracy (abstract, section V).
    papernot_jsma_success: dict[int, float]
    papernot_jsma_success_base: float
    papernot_jsma_success_distilled: float
    papernot_robustness: dict[str, float]
    papernot_accuracy: dict[str, float]
    # Carlini & Wagner 2016/2017: L2 attack on MNIST, 100% success; mean L2 distance undistilled vs T=100.
    cw_l2_mean: dict[str, float]
    cw_success: float
    # Szegedy et al. 2014, Tables 1-4 and section 4.3, keyed by the paper's row (and column) labels.
    szegedy_table1: dict[str, dict[str, float]]
    szegedy_table2: dict[str, dict[str, float]]
    szegedy_table3: dict[str, dict[str, float]]
    szegedy_table4: dict[str, dict[str, float]]
    szegedy_adversarial_training: dict[str, float]
    # Hendrycks & Gimpel 2017 (MNIST, MSP): AUROC / AUPR-in / AUPR-out in % per OOD set; misclassification AUROC %.
    hendrycks_msp_mnist: dict[str, tuple[int, int, int]]
    hendrycks_misclassification: int
    # The models the claims read, so that the OOD report names them from claims.yaml rather than restating them:
    # Hendrycks & Gimpel's MSP claims, and DeVries & Taylor's separately trained baseline.
    hendrycks_model: str
    devries_baseline_model: str


def published(claims_path: Path | str = paths.CLAIMS) -> Reference:
    """The published numbers of the claims file (read once per file)."""
    return _published(Path(claims_path).resolve())


@cache
def _published(claims_path: Path) -> Reference:
    claims = {c["id"]: c for c in load_claims(claims_path)}
    by_id: dict[str, Any] = {claim_id: c["published"] for claim_id, c in claims.items()}

    def value(claim_id: str) -> float:
        return float(by_id[claim_id])

    def percent(claim_id: str) -> int:
        return round(100 * value(claim_id))

    t1 = {label: {q: value(f"szegedy.t1.{m}.{q}") for q in ("train_error", "test_error", "distortion")}
          for label, m in _T1_MODELS.items()}

    def t2_cell(row: str, column: str) -> float:
        if row == column:
            return _OWN_EXAMPLES_ERROR
        return value(f"szegedy.t2.{_T1_MODELS.get(row, row)}.{_T1_MODELS[column]}")

    t2 = {row: {column: t2_cell(row, column) for column in _T1_MODELS} for row in (*_T1_MODELS, *_T2_NOISE_ROWS)}
    t3 = {label: {q: value(f"szegedy.t3.{m}.{q}") for q in ("p1", "p2", "test", "distortion")}
          for label, m in _T3_MODELS.items()}

    def t4_row(claim_row: str, own: str | None = None) -> dict[str, float]:
        return {column: _OWN_EXAMPLES_ERROR if column == own else value(f"szegedy.t4.{claim_row}.{m}")
                for column, m in _T3_MODELS.items()}

    t4 = {label: t4_row(f"adversarial.{m}", own=label) for label, m in _T3_MODELS.items()}
    t4["sigma_0.06"] = t4_row("sigma_0.06")
    t4.update({f"magnified {label}": t4_row(f"magnified.{m}") for label, m in _T3_MODELS.items()})
    t4["sigma_0.1"] = t4_row("sigma_0.1")

    return Reference(
        papernot_jsma_success={t: value(f"papernot.jsma.T{t}") for t in (1, 5, 100)},
        papernot_jsma_success_base=value("papernot.jsma.base"),
        papernot_jsma_success_distilled=value("papernot.jsma.T20"),
        papernot_robustness={"base": value("papernot.robustness.base"),
                             "distilled": value("papernot.robustness.T100")},
        papernot_accuracy={"base": value("papernot.accuracy.base"), "distilled_T20": value("papernot.accuracy.T20")},
        cw_l2_mean={"base": value("cw.l2.base"), "distilled_T100": value("cw.l2.T100")},
        # The papers give 100% for the undistilled model and at T=100 (cw.success.base, cw.success.T100): one number.
        cw_success=value("cw.success.base"),
        szegedy_table1=t1,
        szegedy_table2=t2,
        szegedy_table3=t3,
        szegedy_table4=t4,
        szegedy_adversarial_training={"weight decay": _SZEGEDY_WEIGHT_DECAY_TEST_ERROR,
                                      "dropout": value("szegedy.advtrain.dropout"),
                                      "adversarial pool": value("szegedy.advtrain.adversarial_pool")},
        hendrycks_msp_mnist={name: (percent(f"hendrycks.msp.{claim}"), *_HENDRYCKS_AUPR[name])
                             for claim, name in _HENDRYCKS_SETS.items()},
        hendrycks_misclassification=percent("hendrycks.misclassification"),
        hendrycks_model=claims["hendrycks.msp.gaussian"]["model"],
        devries_baseline_model=claims["devries.auroc.fashion"]["versus"]["model"],
    )
