"""A clone holds everything it refers to: no tracked text file (the README, the docs and committed report tables,
the code that writes the reports, the workflow) points at a path above the repository, which a user's clone
does not have. Relative paths inside it (a rule's conda env, envs/tempered.yaml one folder up from
workflow/rules/) must resolve to a file of the repository, from the folder of the file that names them, as
Snakemake, conda and markdown read them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tempered.config import REPO_ROOT

TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".rst", ".smk", ".toml", ".txt", ".cfg", ".sh", ".ini"}
TEXT_NAMES = {"Snakefile", "Makefile"}
# A relative path that climbs: one or more '../' not preceded by a word character, a dot or a slash (so the
# ellipsis in 'results/calibration/.../reliability_bins.csv' is not one), up to the next delimiter.
UPWARD = re.compile(r"(?<![\w./-])((?:\.\./)+[^\s\"'`()\[\]<>,;{}]*)")


def _tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True,
                           text=True).stdout.split("\0")
    files = [REPO_ROOT / n for n in names if n]
    return [f for f in files if (f.suffix in TEXT_SUFFIXES or f.name in TEXT_NAMES) and f.is_file()]


def upward_paths_outside(path: Path, text: str, root: Path) -> list[str]:
    """Every '../' path in text that leaves root or names nothing there, read from path's folder."""
    bad = []
    for match in UPWARD.finditer(text):
        named = re.sub(r"(?<=\w)\.$", "", match.group(1))  # a full stop ending the sentence
        target = (path.parent / named).resolve()
        if not target.is_relative_to(root.resolve()) or not target.exists():
            bad.append(named)
    return bad


def test_the_check_tells_a_path_inside_from_one_outside(tmp_path):
    (tmp_path / "workflow" / "envs").mkdir(parents=True)
    (tmp_path / "workflow" / "envs" / "env.yaml").write_text("")
    rules = tmp_path / "workflow" / "rules" / "x.smk"
    up = "../"  # spelled apart, so that this file does not hold the paths it tests with
    climbing_out = up * 3 + "shared/reference/numbers.md"
    text = f'conda: "{up}envs/env.yaml"\n# see {climbing_out}; results/a/.../b.csv; {up}envs/env.yaml.\n'
    assert upward_paths_outside(rules, text, tmp_path) == [climbing_out]
    other = f"{up}other/README.md"
    assert upward_paths_outside(tmp_path / "README.md", f"[x]({other})", tmp_path) == [other]


def test_no_tracked_text_file_refers_to_a_path_outside_the_repository():
    found = {}
    for path in _tracked_text_files():
        bad = upward_paths_outside(path, path.read_text(errors="replace"), REPO_ROOT)
        if bad:
            found[str(path.relative_to(REPO_ROOT))] = bad
    assert not found, f"paths outside the repository (or naming nothing in it): {found}"
