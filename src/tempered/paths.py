"""Every result path, in one place. Snakemake rules use these patterns; wildcards are {model} and {seed}."""

RESULTS = "results"
LOGS = "logs"
COST_RECORDS = f"{LOGS}/benchmarks"

# Data (rules fetch_mnist, fetch_fashion_mnist, split)
DATASET_ARRAYS = f"{RESULTS}/data/{{dataset}}.npz"
DATASET_MANIFEST = f"{RESULTS}/data/{{dataset}}.manifest.json"
SPLIT_INDEXES = f"{RESULTS}/data/split.npz"
SPLIT_MANIFEST = f"{RESULTS}/data/split.manifest.json"

# One trained model per (model, seed)
MODEL_DIR = f"{RESULTS}/models/{{model}}/seed{{seed}}"
CHECKPOINT = f"{MODEL_DIR}/model.pt"
HISTORY = f"{MODEL_DIR}/history.csv"

# Distillation: a teacher's soft labels on its training set, the targets of the student of the same T
SOFT_LABELS = f"{RESULTS}/distillation/{{model}}/seed{{seed}}/soft_labels.npz"

# Evaluation on the sets held out from the model's training set
EVAL_DIR = f"{RESULTS}/eval/{{model}}/seed{{seed}}"
LOGITS = f"{EVAL_DIR}/logits.npz"
EVAL_METRICS = f"{RESULTS}/metrics/eval/{{model}}/seed{{seed}}.json"
SEED_SUMMARY = f"{RESULTS}/metrics/summary/{{model}}.json"

# Attacks on the base model and the distilled students (wildcards {attack}, {model}, {seed})
ADVERSARIAL = f"{RESULTS}/attacks/{{attack}}/{{model}}/seed{{seed}}.npz"
ATTACK_METRICS = f"{RESULTS}/metrics/attacks/{{attack}}/{{model}}/seed{{seed}}.json"
GRADIENTS = f"{RESULTS}/attacks/gradients/{{model}}/seed{{seed}}.npz"
DISTILLATION_TABLE = f"{RESULTS}/tables/distillation.csv"
DISTILLATION_MARKDOWN = f"{RESULTS}/tables/distillation.md"
DISTILLATION_METRICS = f"{RESULTS}/metrics/distillation.json"
DISTILLATION_FIGURES = {
    "success": f"{RESULTS}/figures/distillation/success_vs_T.png",
    "robustness": f"{RESULTS}/figures/distillation/robustness_vs_T.png",
    "accuracy": f"{RESULTS}/figures/distillation/accuracy_vs_T.png",
    "gradients": f"{RESULTS}/figures/distillation/gradient_magnitudes.png",
    "examples": f"{RESULTS}/figures/distillation/adversarial_examples.png",
}

# Temperature scaling (Guo et al. 2017) per (model, seed), then one table over every model
RELIABILITY_BINS = f"{RESULTS}/calibration/{{model}}/seed{{seed}}/reliability_bins.csv"
CALIBRATION_METRICS = f"{RESULTS}/metrics/calibration/{{model}}/seed{{seed}}.json"
RELIABILITY_DIAGRAM = f"{RESULTS}/figures/reliability/{{model}}/seed{{seed}}.png"
CALIBRATION_TABLE = f"{RESULTS}/tables/calibration.csv"
CALIBRATION_MARKDOWN = f"{RESULTS}/tables/calibration.md"
FITTED_VS_DISTILLATION_T = f"{RESULTS}/figures/calibration/fitted_vs_distillation_T.png"

# OOD and misclassification detection per (model, seed); per-sample scores, one CSV per detector x dataset
OOD_DOWNLOADED_ARRAYS = f"{RESULTS}/data/ood_downloaded.npz"
OOD_DOWNLOADED_MANIFEST = f"{RESULTS}/data/ood_downloaded.manifest.json"
OOD_SCORES_DIR = f"{RESULTS}/ood/{{model}}/seed{{seed}}/scores"
OOD_METRICS = f"{RESULTS}/metrics/ood/{{model}}/seed{{seed}}.json"
OOD_ROC = f"{RESULTS}/figures/ood_roc/{{model}}/seed{{seed}}.png"
OOD_HISTOGRAMS = f"{RESULTS}/figures/ood_scores/{{model}}/seed{{seed}}.png"
OOD_TABLE = f"{RESULTS}/tables/ood.csv"
OOD_MARKDOWN = f"{RESULTS}/tables/ood.md"
OOD_AUROC_VS_T = f"{RESULTS}/figures/ood/auroc_vs_distillation_T.png"

# Szegedy et al. 2014 section 4: error on the training set (reported, never tuned on), one saved L-BFGS adversarial
# set per (model, seed), the transfer of every set to every model per seed, the tables and figures
TRAINING_SET_ERROR = f"{RESULTS}/metrics/szegedy/training_set_error/{{model}}/seed{{seed}}.json"
LBFGS_ADVERSARIAL = f"{RESULTS}/szegedy/adversarial/{{model}}/seed{{seed}}.npz"
LBFGS_METRICS = f"{RESULTS}/metrics/szegedy/attack/{{model}}/seed{{seed}}.json"
SZEGEDY_TRANSFER = f"{RESULTS}/metrics/szegedy/transfer/seed{{seed}}.json"
SZEGEDY_TABLES = {name: (f"{RESULTS}/tables/szegedy_{name}.csv", f"{RESULTS}/tables/szegedy_{name}.md")
                  for name in ("table1", "table2", "table3", "table4", "adversarial_training")}
SZEGEDY_MARKDOWN = f"{RESULTS}/tables/szegedy.md"
SZEGEDY_METRICS = f"{RESULTS}/metrics/szegedy/tables.json"
SZEGEDY_EXAMPLES = f"{RESULTS}/figures/szegedy/examples/{{model}}/seed{{seed}}.png"
SZEGEDY_TRANSFER_HEATMAP = f"{RESULTS}/figures/szegedy/transfer_matrix.png"

# Membership inference (issue 15): roles per size and model seed (its half of the pool), each membership model's
# outputs on the candidates (what an attacker of it, or one using it as a shadow, reads), then per target (wildcard
# {model} = mi<size>_<name>, {seed} its model seed) metrics, per-sample scores (one CSV per attack) and ROC
MEMBERSHIP_ROLES = f"{RESULTS}/membership/roles/size{{size}}/seed{{seed}}.npz"
MEMBERSHIP_OUTPUTS = f"{RESULTS}/membership/outputs/{{model}}/seed{{seed}}.npz"
MEMBERSHIP_METRICS = f"{RESULTS}/metrics/membership/{{model}}/seed{{seed}}.json"
MEMBERSHIP_SCORES_DIR = f"{RESULTS}/membership/scores/{{model}}/seed{{seed}}"
MEMBERSHIP_ROC = f"{RESULTS}/figures/membership/roc/{{model}}/seed{{seed}}.png"
MEMBERSHIP_TABLE = f"{RESULTS}/tables/membership.csv"
MEMBERSHIP_PAIRED_TABLE = f"{RESULTS}/tables/membership_paired.csv"  # what temperature scaling changes, per seed
MEMBERSHIP_MARKDOWN = f"{RESULTS}/tables/membership.md"
MEMBERSHIP_SUMMARY = f"{RESULTS}/metrics/membership.json"
MEMBERSHIP_FIGURES = {
    "vs_temperature": f"{RESULTS}/figures/membership/leakage_vs_distillation_T.png",
    "scaling": f"{RESULTS}/figures/membership/before_after_temperature_scaling.png",
    "vs_generalization": f"{RESULTS}/figures/membership/leakage_vs_gap_and_ece.png",
}

# Figures
TRAINING_CURVE = f"{RESULTS}/figures/training_curve/{{model}}.png"

# The reproduction report (rule report): claims beside our measurements, the summary figure
CLAIMS = "workflow/claims.yaml"
REPORT_MARKDOWN = f"{RESULTS}/REPORT.md"
CLAIMS_TABLE = f"{RESULTS}/tables/claims.csv"
REPORT_METRICS = f"{RESULTS}/metrics/report.json"
TEMPERATURE_SUMMARY = f"{RESULTS}/figures/summary/temperature_across_pipeline.png"


def cost_label(config_files: list[str]) -> str:
    """The name a run's cost records file under: its presets' file stems joined by '+', or 'default'."""
    from pathlib import PurePath

    stems = [PurePath(f).stem for f in config_files if PurePath(f).name != "config.yaml"]
    return "+".join(stems) or "default"


def cost_record(label: str, rule: str, key: str = "") -> str:
    """Snakemake's benchmark record of one job (wall, CPU time, peak memory): logs/benchmarks/<label>/<rule>...,
    where label names the config files (the preset), so that a preset's records never stand in for another's."""
    return f"{COST_RECORDS}/{label}/{rule}/{key}.tsv" if key else f"{COST_RECORDS}/{label}/{rule}.tsv"


def log(rule: str, key: str = "") -> str:
    """One log file per job: logs/<rule>.log, or logs/<rule>/<key>.log for wildcard rules."""
    return f"{LOGS}/{rule}/{key}.log" if key else f"{LOGS}/{rule}.log"
