# Shared by every stage: config validation, the arguments every job gets, result paths, targets.
import os

from tempered import paths
from tempered.config import (
    MEMBERSHIP_NAME,
    SHADOW_NAME,
    all_model_names,
    attacked_models,
    distilled_names,
    membership_shadows,
    membership_targets,
    validate_config,
)
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
# Membership inference (rules/membership.smk): targets mi<size>_<model> and shadows mi<size>_shadow<k> train with
# the rules of train.smk, on their roles instead of the split.
MI_TARGETS = membership_targets(config)
MI_SHADOWS = membership_shadows(config)
TRAINED = MODELS + MI_TARGETS + MI_SHADOWS
ALL_TEACHERS = TEACHERS + [m for m in MI_TARGETS if "_teacher_T" in m]
ALL_STUDENTS = STUDENTS + [m for m in MI_TARGETS if "_student_T" in m]
SEEDS = [str(s) for s in config["seeds"]]
THREADS = config["compute"]["threads"]  # every job applies it itself (tempered.cli); declared for scheduling
# Requested by training and attack jobs; a resource, not a parameter, so switching it reruns nothing.
GPUS = config["compute"]["gpus_per_job"]

wildcard_constraints:
    model="|".join(TRAINED),
    seed=r"\d+",
    size=r"\d+",
    k=r"\d+",
    dataset="mnist|fashion_mnist",


def membership_size(model):
    return MEMBERSHIP_NAME.match(model)["size"]


def training_sets(wildcards):
    """The index sets a model trains on: the split, or a membership target's or shadow's roles."""
    match = MEMBERSHIP_NAME.match(wildcards.model)
    if match is None:
        return paths.SPLIT_INDEXES
    shadow = SHADOW_NAME.match(match["inner"])
    if shadow:
        return paths.SHADOW_ROLES.format(size=match["size"], k=shadow["k"])
    return paths.TARGET_ROLES.format(size=match["size"])


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
        paths.MEMBERSHIP_MARKDOWN,  # rules/membership.smk
        expand(paths.SZEGEDY_EXAMPLES, model=SZEGEDY_ATTACKED, seed=SEEDS),  # rules/szegedy.smk
        paths.REPORT_MARKDOWN,  # rules/report.smk
    ]
