"""Fold the DVC stages of one Snakemake rule's jobs into `foreach` stages: one definition whose cmd, deps, params
and outs are templates over `${item.<field>}`, and the jobs as items (the wildcards, plus the inputs the
wildcards do not determine). dvc.yaml stays short in text however many jobs the DAG has; the items live in
their own generated file (dvc_export.JOBS_FILE).

A template is found by writing each job's wildcard values back as `${item.<name>}`, following the project's
path conventions: a name-like value (model, attack, dataset) where it stands as a whole word, a number (seed,
size) only after its label (`seed0`, `size1000`, `--seed 0`). Every template is checked
against every job it stands for: expanding it with the job's fields gives the job's stage exactly, or the
export fails. Jobs whose inputs differ in shape (a list of files that varies with something the wildcards do not
name) get one definition per shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# A number wildcard is written after one of its labels: paths say seed0/size1000, commands --seed 0.
NUMBER_LABELS = {"seed": ("seed", "--seed "), "size": ("size", "--size ")}
SOURCE_PREFIX = "src/"
PLACEHOLDER = re.compile(r"\$\{item\.([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class JobStage:
    """One job's DVC stage, with what templating needs: its foreach key, wildcards and named inputs."""

    key: str
    wildcards: dict[str, str]
    inputs: dict[str, str | list[str]]
    stage: dict[str, Any]
    settings: dict[str, str]  # fields that name config entries, written into params keys (models.<family>)
    labels: tuple[str, ...]  # the part of the DAG the job belongs to: its definition is named for it
    # Finer parts (a membership size, a dataset), applied only when the job's template still names one as a word:
    # its shape then depends on it (a size's list of shadows, a dataset's settings), and each gets its own
    # definition.
    refinements: tuple[str, ...] = ()
    # Named inputs whose paths keep their numbers (template_text): a list over every seed.
    numbers_as_written: tuple[str, ...] = ()

    def literal_paths(self) -> tuple[tuple[str, ...], ...]:
        values = [self.inputs.get(name, []) for name in self.numbers_as_written]
        return tuple((value,) if isinstance(value, str) else tuple(value) for value in values)


@dataclass(frozen=True)
class Definition:
    """A foreach stage: the templated stage and its items (foreach key -> fields)."""

    name: str
    body: dict[str, Any]
    items: dict[str, dict[str, str]]


def placeholder(field: str) -> str:
    return "${item." + field + "}"


def _word(value: str) -> re.Pattern[str]:
    """`value` where it stands as a whole word."""
    return re.compile(r"(?<![A-Za-z0-9_])" + re.escape(value) + r"(?![A-Za-z0-9_])")


def _labeled_number(name: str, value: str) -> re.Pattern[str]:
    labels = NUMBER_LABELS.get(name, (name,))
    after_label = "|".join(f"(?<={re.escape(label)})" for label in labels)
    return re.compile(f"(?:{after_label}){re.escape(value)}(?![0-9])")


def template_key(key: str, job: JobStage) -> str:
    """A params key with the config entries it names (models.<family>) and the wildcards as placeholders."""
    for name, value in job.settings.items():
        key = _word(value).sub(placeholder(name), key)
    return template_text(key, job.wildcards, {})


def _wildcards_in(text: str, wildcards: Mapping[str, str], numbers: bool) -> str:
    for name, value in sorted(wildcards.items(), key=lambda kv: -len(kv[1])):
        if value.isdigit() and not numbers:
            continue
        pattern = _labeled_number(name, value) if value.isdigit() else _word(value)
        text = pattern.sub(placeholder(name).replace("\\", "\\\\"), text)
    return text


def template_text(text: str, wildcards: Mapping[str, str], fields: Mapping[str, str],
                  numbers_as_written: Sequence[Sequence[str]] = ()) -> str:
    """`text` with the job's field values (whole paths, first) and wildcard values written as placeholders.
    Source files stay as they are: attacks/fgsm.py is code every attack job depends on, not the attack's name.
    numbers_as_written: lists of paths (one file per model seed, the job's own seed among them) that keep their
    numbers, as a whole dep or as the whole list in a command: written as templates, every job's list would
    differ in the one seed that is its own."""
    if text.startswith(SOURCE_PREFIX):
        return text
    for name, value in fields.items():
        text = " ".join(placeholder(name) if token == value else token for token in text.split(" "))
    if any(text in paths for paths in numbers_as_written):
        return _wildcards_in(text, wildcards, numbers=False)
    runs = [" ".join(paths) for paths in numbers_as_written if paths]
    kept = [run for run in runs if run in text]
    for i, run in enumerate(kept):  # out of the way while the numbers are templated
        text = text.replace(run, f"\0{i}\0")
    text = _wildcards_in(text, wildcards, numbers=True)
    for i, run in enumerate(kept):
        text = text.replace(f"\0{i}\0", _wildcards_in(run, wildcards, numbers=False))
    return text


def expand_text(template: str, item: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: item[m[1]], template)


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """The stage with `change` applied to every string in it (dict keys included: params name keys)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {change(k): _map_strings(v, change) for k, v in value.items()}
    return value


def varying_inputs(jobs: Sequence[JobStage]) -> list[str]:
    """The named single-file inputs the wildcards do not determine: each becomes a field of the items."""
    names = []
    for name in jobs[0].inputs:
        values = [job.inputs.get(name) for job in jobs]
        if not all(isinstance(v, str) for v in values):
            continue
        if len({template_text(v, job.wildcards, {}) for v, job in zip(values, jobs, strict=True)}) > 1:
            names.append(name)
    return names


def expand_stage(body: dict[str, Any], item: Mapping[str, str]) -> dict[str, Any]:
    """A definition's stage for one item: what DVC runs for it."""
    return _map_strings(body, lambda text: expand_text(text, item))


def _item(job: JobStage, fields: Sequence[str]) -> dict[str, str]:
    return {**job.wildcards, **job.settings, **{name: job.inputs[name] for name in fields}}


def _template(job: JobStage, fields: Sequence[str]) -> dict[str, Any]:
    extra = {name: job.inputs[name] for name in fields}
    return {part: _map_strings(value, lambda text: template_key(text, job)) if part == "params"
            else _map_strings(value, lambda text: template_text(text, job.wildcards, extra, job.literal_paths()))
            for part, value in job.stage.items()}


def _labels(job: JobStage, body: dict[str, Any]) -> tuple[str, ...]:
    text = json.dumps(body)
    return job.labels + tuple(r for r in job.refinements if re.search(_refinement_word(r), text))


def _refinement_word(refinement: str) -> str:
    """A refinement as it stands in a template: `mi1000` in `mi1000_cnn` but not in `mi10000`, `mnist` in
    `data/mnist.npz` but not in `fashion_mnist`."""
    return r"(?<![A-Za-z0-9_])" + re.escape(refinement) + r"(?![A-Za-z0-9])"


def fold(rule: str, jobs: Sequence[JobStage]) -> list[Definition]:
    """The foreach definitions that stand for these jobs of one rule, checked job by job. Jobs with other labels
    get their own definition, named <rule>_<labels> (membership_attack_mi1000; a label the rule's name holds is
    not repeated), so that adding a part of the DAG (a membership size) adds definitions and renames none; a
    second shape under the same labels is numbered."""
    fields = varying_inputs(jobs)
    groups: dict[tuple[tuple[str, ...], str], tuple[dict[str, Any], list[JobStage]]] = {}
    for job in jobs:
        body = _template(job, fields)
        if expand_stage(body, _item(job, fields)) != job.stage:
            raise ValueError(f"{rule}: the template found for job {job.key} does not give its stage back")
        groups.setdefault((_labels(job, body), json.dumps(body, sort_keys=True)), (body, []))[1].append(job)
    definitions = []
    for labels in sorted({labels for labels, _ in groups}):
        shapes = [shape for (key, _), shape in groups.items() if key == labels]
        name = "_".join([rule, *(label for label in labels if label not in rule)])
        for i, (body, members) in enumerate(shapes, 1):
            numbered = name if len(shapes) == 1 else f"{name}_{i}"
            definitions.append(Definition(numbered, body, {job.key: _item(job, fields) for job in members}))
    return definitions
