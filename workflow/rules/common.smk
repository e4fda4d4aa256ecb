# Shared by every stage: config validation, the arguments every job gets, result paths, targets.
import fcntl
import json
import os
import shlex

from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecMode

from tempered import code_deps, paths
from tempered.config import refuse_overrides, validate_config
from tempered.model_grid import (
    all_model_names,
    attacked_models,
    distilled_names,
    membership_model_seeds,
    membership_recipes,
    membership_targets,
    model_dataset,
    model_grid,
    shadow_recipe,
    trained_model_names,
    training_twins,
)
from tempered.data.sources import check_local_dir
from tempered.step_params import config_slice

# Jobs read their parameters from the config files, so a --config override would not reach them (refused first:
# Snakemake makes its values strings, which the schema would report instead).
refuse_overrides(workflow.config_settings.config)
# Validate before any job runs; an unknown key or a wrong type fails here, naming the key.
validate_config(config, source="snakemake config")

# A fetch job that reruns (its settings changed) loses the verified arrays first: Snakemake deletes a job's
# outputs before running it. So a configured local directory is verified here, before any job runs.
for _dataset in ("mnist", "fashion_mnist"):
    check_local_dir(_dataset, config["data"][_dataset])


def _unsafe_name(name):
    """Why a config file name cannot be passed to a job, or None. Names are quoted for the shell (CONFIG_ARGS);
    these are the ones that quoting does not save: an option to the CLI's parser, or a name that dvc.yaml's
    one-line command (whitespace normalized by export-dvc) or a log line would change."""
    if name.startswith("-"):
        return "it starts with '-', so the step's parser would read it as an option"
    if any(not c.isprintable() for c in name):
        return "it holds a control character (newline, tab, ...)"
    if "  " in name:
        return "it holds two spaces in a row, which dvc.yaml's one-line command would not keep"
    return None


def _config_files():
    """config.yaml, then presets in the order given: the files every job re-reads and validates."""
    files = [os.path.relpath(os.path.abspath(f)) for f in workflow.configfiles]
    refused = [f"{f!r}: {why}" for f in files if (why := _unsafe_name(f))]
    if refused:
        raise ValueError("config file names that cannot be passed to the jobs; rename them:\n  "
                         + "\n  ".join(refused))
    main = [f for f in files if f == "config.yaml"]
    return main + [f for f in files if f != "config.yaml"]


def pdf(png_pattern):
    """Every figure is also saved as PDF beside its PNG (tempered.reporting.figures.save_figure)."""
    return png_pattern.removesuffix(".png") + ".pdf"


# Quoted: a preset named `$(touch X).yaml` or `my preset.yaml` reaches bash in every job's command line.
CONFIG_ARGS = " ".join(f"--config {shlex.quote(f)}" for f in _config_files())
COST_LABEL = paths.cost_label(_config_files())


def cost_record(rule, key=""):
    """Each job's wall time, CPU time and peak memory (Snakemake's benchmark), read by `tempered costs` and by
    the estimate `make reproduce` prints first (`tempered preflight`). Not a result: a missing record reruns
    nothing, and DVC, which keeps no such record, builds the same results."""
    return paths.cost_record(COST_LABEL, rule, key)


def code(step):
    """The source files `python -m tempered <step>` runs (tempered.code_deps): a rule's input, so a job reruns when
    its own code changes (a figure module reruns the jobs that draw with it, not the training), and dvc.yaml's
    stages, exported from these jobs, depend on the same files."""
    return code_deps.step_files(step)


MODELS = all_model_names(config)
TEACHERS = distilled_names(config, "teacher")
STUDENTS = distilled_names(config, "student")
# Membership inference (rules/membership.smk): recipes mi<size>_<model> train with the rules of train.smk at model
# seeds 0..n_shadows, each on its half of the size's pool, not the split; targets are the recipes at MI_SEEDS, their
# shadows a recipe's other seeds (the target's own recipe or a shared one).
MI_TARGETS = membership_targets(config)
MI_RECIPES = membership_recipes(config)
MI_MODEL_SEEDS = [str(s) for s in membership_model_seeds(config)]  # 0..n_shadows: targets' and shadows' seeds
TRAINED = trained_model_names(config)
# Each model's dimensions (family, role, T, size), looked up by name: no rule reads them from the name.
GRID = model_grid(config)
# Models whose training would repeat another's (the teacher at T=1 is the base CNN): copied, not retrained.
TWINS = training_twins(config)
ALL_TEACHERS = [m for m in TRAINED if GRID[m].role == "teacher"]
ALL_STUDENTS = [m for m in TRAINED if GRID[m].role == "student"]
SEEDS = [str(s) for s in config["seeds"]]
MI_SEEDS = [str(s) for s in config["membership"]["seeds"]]  # the targets' model seeds: the experiment's repetitions
THREADS = config["compute"]["threads"]  # every job applies it itself (tempered.cli); declared for scheduling
# Requested by training and attack jobs; a resource, not a parameter, so switching it reruns nothing.
GPUS = config["compute"]["gpus_per_job"]

wildcard_constraints:
    model="|".join(TRAINED),
    seed=r"\d+",
    size=r"\d+",
    dataset="mnist|fashion_mnist",


def shadow_recipe_name(target):
    """The recipe whose other model seeds are a membership target's shadows (membership.shadow_recipe)."""
    return shadow_recipe(config, GRID[target]).name


def model_images(wildcards):
    """The arrays a model trains and is attacked on: its family's dataset (models.<name>.dataset)."""
    return paths.DATASET_ARRAYS.format(dataset=model_dataset(config, wildcards.model))


def training_sets(wildcards):
    """The index sets a model trains on: the split, or a membership recipe's roles at its model seed."""
    model = GRID[wildcards.model]
    if model.is_membership:
        return paths.MEMBERSHIP_ROLES.format(size=model.size, seed=wildcards.seed)
    return paths.SPLIT_INDEXES


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


# Snakemake and `dvc repro` on one tree at once would each rebuild, or restore from DVC's cache, files the other
# is writing. Both honour one lock: DVC's own repo lock, an flock on .dvc/tmp/lock. A Snakemake run that executes
# jobs holds it from its first job to its exit (kill -9 included: the kernel drops it), so a dvc command
# started meanwhile stops with "Unable to acquire lock". DVC itself lets go of that lock while a stage's
# command runs and records the stage in .dvc/tmp/rwlock instead: Snakemake refuses to start while either is
# held by a live DVC process.
DVC_TMP = os.path.join(".dvc", "tmp")
_held_locks = []  # the open lock file: closing it (or exiting) releases the lock


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dvc_stage_holders():
    """The live processes DVC's stage lock file names (pid and command)."""
    try:
        with open(os.path.join(DVC_TMP, "rwlock")) as f:
            rwlock = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    infos = [*rwlock.get("write", {}).values(), *(i for v in rwlock.get("read", {}).values() for i in v)]
    return sorted({f"pid {i['pid']}: {i['cmd']}" for i in infos if _alive(int(i["pid"]))})


def hold_dvc_lock():
    if not os.path.isdir(".dvc"):
        return
    os.makedirs(DVC_TMP, exist_ok=True)
    lock = open(os.path.join(DVC_TMP, "lock"), "a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise WorkflowError(f"DVC holds this tree (pid {holder} in {DVC_TMP}/lock): a `dvc repro` or other dvc "
                            "command is running here. Let it finish (or stop it), then run Snakemake again.")
    stages = _dvc_stage_holders()
    if stages:
        lock.close()
        raise WorkflowError(f"`dvc repro` is running a stage in this tree ({DVC_TMP}/rwlock names "
                            + "; ".join(stages) + "). Let it finish (or stop it), then run Snakemake again.")
    lock.truncate(0)
    lock.write(f" {os.getpid()} (snakemake)\n")
    lock.flush()
    _held_locks.append(lock)


onstart:
    if workflow.exec_mode == ExecMode.DEFAULT:  # not in a cluster job's own Snakemake
        hold_dvc_lock()
