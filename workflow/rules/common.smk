# Shared by every stage: config validation, the arguments every job gets, result paths, targets.
import os

from tempered import paths
from tempered.config import all_model_names, attacked_models, distilled_names, validate_config
from tempered.step_params import config_slice

# Validate before any job runs; an unknown key or a wrong type fails here, naming the key.
validate_config(config, source="snakemake config")

if workflow.config_settings.config:
    # Jobs read their parameters from the config files, so a --config override would not reach them.
    raise ValueError(
        "command-line --config overrides are not supported: put them in a YAML file and pass it with "
        "--configfile (see workflow/presets/)"
    )


def _config_files():
    """config.yaml, then presets in the order given: the files every job re-reads and validates."""
    files = [os.path.relpath(os.path.abspath(f)) for f in workflow.configfiles]
    main = [f for f in files if f == "config.yaml"]
    return main + [f for f in files if f != "config.yaml"]


def pdf(png_pattern):
    """Every figure is also saved as PDF beside its PNG (tempered.figures.save_figure)."""
    return png_pattern.removesuffix(".png") + ".pdf"


CONFIG_ARGS = " ".join(f"--config {f}" for f in _config_files())
MODELS = all_model_names(config)
TEACHERS = distilled_names(config, "teacher")
STUDENTS = distilled_names(config, "student")
SEEDS = [str(s) for s in config["seeds"]]
THREADS = config["compute"]["threads"]  # every job applies it itself (tempered.cli); declared for scheduling
# Requested by training and attack jobs; a resource, not a parameter, so switching it reruns nothing.
GPUS = config["compute"]["gpus_per_job"]

wildcard_constraints:
    model="|".join(MODELS),
    seed=r"\d+",
    dataset="mnist|fashion_mnist",


def all_targets():
    return [
        expand(paths.DATASET_MANIFEST, dataset=["mnist", "fashion_mnist"]),
        paths.SPLIT_MANIFEST,
        expand(paths.SEED_SUMMARY, model=MODELS),
        expand(paths.TRAINING_CURVE, model=MODELS),
        paths.CALIBRATION_MARKDOWN,
        paths.OOD_MARKDOWN,
        paths.DISTILLATION_MARKDOWN,
        paths.SZEGEDY_MARKDOWN,
        expand(paths.SZEGEDY_EXAMPLES, model=SZEGEDY_ATTACKED, seed=SEEDS),  # rules/szegedy.smk
        paths.REPORT_MARKDOWN,  # rules/report.smk
    ]
