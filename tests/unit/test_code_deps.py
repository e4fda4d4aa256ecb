"""Each step's source files (tempered.code_deps): what a job depends on, so a change reruns exactly its readers."""

import ast
import sys
from pathlib import Path

import pytest

from tempered import code_deps
from tempered.cli import build_parser
from tests.conftest import REPO_ROOT
from tests.unit.tiny_inputs import write_tiny_cnn_and_digits

ENTRY = {"src/tempered/__init__.py", "src/tempered/__main__.py", "src/tempered/cli.py",
         "src/tempered/stages/__init__.py"}


def test_every_step_runs_the_entry_its_own_stage_module_and_files_that_exist():
    for step, owner in code_deps.stage_of_step().items():
        files = code_deps.step_files(step)
        assert set(files) >= ENTRY, step
        assert str(code_deps.module_path(owner).relative_to(REPO_ROOT)) in files, step
        assert all((REPO_ROOT / f).is_file() for f in files), step


def test_a_figure_module_belongs_only_to_the_steps_that_draw_with_it():
    def readers(path: str) -> set[str]:
        return {step for step in code_deps.stage_of_step() if path in code_deps.step_files(step)}

    assert readers("src/tempered/stages/ood/figures.py") == {"ood", "ood-report"}
    trainers = readers("src/tempered/training/convex.py")
    assert "train" in trainers and not trainers & {"ood-report", "calibration-report", "report", "summarize"}


def test_the_run_commands_lazy_imports_are_not_a_steps_code():
    """cli.py imports dvc_export, preflight and costs inside its run commands only; no step runs them."""
    train = set(code_deps.step_files("train"))
    assert not train & {"src/tempered/dvc_export.py", "src/tempered/preflight.py", "src/tempered/costs.py"}
    assert "src/tempered/dvc_export.py" in code_deps.step_files("export-dvc")
    with pytest.raises(KeyError, match="no module registers the command 'nope'"):
        code_deps.step_files("nope")


@pytest.mark.parametrize(("source", "importer", "bound"), [
    ("import numpy", "tempered.x", {"numpy": ("numpy", None)}),
    ("from tempered.ood import scores", "tempered.x", {"scores": ("tempered.ood.scores", None)}),
    ("from tempered.ood.scores import msp as m", "tempered.x", {"m": ("tempered.ood.scores", "msp")}),
    ("from .scores import msp", "tempered.ood.tuning", {"msp": ("tempered.ood.scores", "msp")}),
    ("from . import scores", "tempered.ood", {"scores": ("tempered.ood.scores", None)}),
    ("from ..config import load_config", "tempered.ood.tuning", {"load_config": ("tempered.config", "load_config")}),
])
def test_an_import_binds_a_module_or_a_name_of_one(source, importer, bound):
    assert code_deps._bindings(ast.parse(source).body[0], importer) == bound


def _attack_args(tmp_path: Path, repo_config: dict, attack: str) -> list[str]:
    overlay = tmp_path / "tiny.yaml"
    overlay.write_text("attacks: {samples: 2, batch_size: 10, cw_l2: {binary_search_steps: 1, max_iterations: 3}}\n")
    checkpoint, images = write_tiny_cnn_and_digits(tmp_path, repo_config["models"]["cnn"])
    return ["attack", "--config", str(REPO_ROOT / "config.yaml"), "--config", str(overlay), "--attack", attack,
            "--model", "cnn", "--seed", "0", "--checkpoint", str(checkpoint),
            "--images", str(images), "--out", str(tmp_path / f"{attack}.npz"),
            "--metrics", str(tmp_path / f"{attack}.json")]


@pytest.mark.parametrize("attack", ["fgsm", "jsma", "cw_l2"])
def test_every_function_a_real_step_runs_is_in_its_files(tmp_path, repo_config, attack):
    """Soundness: run the step and record the file of every Python function it calls (sys.setprofile); each one
    of the package must be among the step's files, or a change to it would rerun nothing."""
    args = build_parser().parse_args(_attack_args(tmp_path, repo_config, attack))
    package = code_deps.PACKAGE_DIR
    called: set[str] = set()

    def record(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(str(package)):
            called.add(frame.f_code.co_filename)

    sys.setprofile(record)
    try:
        args.func(args)
    finally:
        sys.setprofile(None)
    ran = {str(code_deps.SOURCE_DIR / Path(f).relative_to(package)) for f in called}
    assert f"src/tempered/attacks/{attack}.py" in ran  # the trace sees the attack itself
    assert ran <= set(code_deps.step_files("attack")), sorted(ran - set(code_deps.step_files("attack")))


def test_a_module_of_nothing_but_its_docstring_is_no_dependency_and_one_with_code_is():
    attack = code_deps.step_files("attack")
    assert "src/tempered/attacks/registry.py" in attack
    assert "src/tempered/attacks/__init__.py" not in attack  # its docstring only
    assert not code_deps.read_module("tempered.attacks").runs_code
    assert "src/tempered/models/__init__.py" in attack  # build_model lives there
    assert code_deps.read_module("tempered.models").runs_code
