"""Every result path, in one place. Snakemake rules use these patterns; wildcards are {model} and {seed}."""

RESULTS = "results"
LOGS = "logs"

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

# Figures
TRAINING_CURVE = f"{RESULTS}/figures/training_curve/{{model}}.png"



def log(rule: str, key: str = "") -> str:
    """One log file per job: logs/<rule>.log, or logs/<rule>/<key>.log for wildcard rules."""
    return f"{LOGS}/{rule}/{key}.log" if key else f"{LOGS}/{rule}.log"
