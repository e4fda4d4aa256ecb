"""results/REPORT.md: every claim of workflow/claims.yaml beside our measurement and its computed verdict, one
section per paper, with the run's provenance and every way the preset departs from the papers' protocols.

Rendering only: the verdicts come from tempered.stages.report.claims, the numbers from the metrics files. The one
line that changes between two builds from the same results is the timestamp line (TIMESTAMP_PREFIX)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tempered.reporting.tables import markdown_table
from tempered.stages.report.claims import (
    DIRECTION_ONLY,
    JUDGED,
    NOT_COMPARABLE,
    NOT_JUDGED,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    UNKNOWN_CAUSE,
    VERDICTS,
    Outcome,
)

TIMESTAMP_PREFIX = "Generated "
# Opens the report of a run that judges no claim (report.judge_claims false), above everything else.
NOT_JUDGED_NOTICE = (
    "> **Smoke-scale run: its numbers mean nothing and its claims are not judged.** This run's config sets "
    "`report.judge_claims: false`, as the smoke preset (`workflow/presets/smoke.yaml`) does: it tests the "
    "pipeline's plumbing on tiny budgets (the deviations at the end list them). Each claim it measures shows our "
    "value and interval beside the published one under the verdict 'not judged': at these budgets a pass or a "
    "miss says nothing about the papers, and a tiny sample's wide interval would let a published value pass.")
# Report sections in reading order: heading, the claims.yaml papers they hold, the figure group they show.
SECTIONS = (
    ("Szegedy et al. 2014: minimal adversarial examples and their transfer", ("szegedy2014",), "szegedy"),
    ("Papernot et al. 2016 and Carlini & Wagner: defensive distillation and its refutation",
     ("papernot2016", "carlini2016"), "distillation"),
    ("Guo et al. 2017: temperature scaling", ("guo2017",), "calibration"),
    ("DeVries & Taylor 2018, Hendrycks & Gimpel 2017, ODIN: out-of-distribution detection",
     ("devries2018", "hendrycks2017", "liang2018"), "ood"),
    ("Song et al. 2019: membership inference", ("song2019", "question"), "membership"),
)
# Protocol departures that hold at every preset (the preset's own ones are listed from the config).
FIXED_DEVIATIONS = (
    "Every model is selected and temperature-scaled on a validation set held out of the 60,000 training images "
    "(split.validation_size); the papers do not say what they held out.",
    "Szegedy et al. trained with L-BFGS; we train the convex FC10 models by full-batch L-BFGS to a gradient "
    "tolerance (history.csv records the final objective and gradient norm) and the other Szegedy models by SGD "
    "with momentum (models.<name>.optimizer).",
    "Szegedy et al.'s weight decay 'lambda * sum(w^2) / k' is ambiguous. Measured at FC10's optimum (train / test "
    "error), lambda * sum(w^2) / k with k the output units gave 15.6% / 14.6% at lambda 1 (paper 21.2% / 20%) and "
    "8.3% / 8.2% at 1e-2 (paper 10% / 9.4%); lambda / 2 * sum(p^2) over weights and biases, the only reading tried "
    "that fits all three FC10 rows, gave 6.6% / 7.4% (paper 6.7% / 7.4%), 9.9% / 9.2% and 21.2% / 20.0%. Every "
    "Szegedy model uses it.",
    "Attacks run on a seeded sample (attacks.samples, szegedy.attack.samples), not the whole set; Szegedy's "
    "Tables 1-2 examples come from training digits and Tables 3-4 from test digits, as in the paper.",
    "kmnist, EMNIST letters and Omniglot are used only where torchvision can download them; notMNIST and "
    "CIFAR-10 greyscale (Hendrycks & Gimpel) are not in the pipeline.",
    "Membership inference: Song et al. 2019 attacked Fashion-MNIST and CIFAR-10 models trained on the whole "
    "training set; ours are MNIST and Fashion-MNIST models trained anew on random halves of a seeded pool of twice "
    "each size (membership.train_sizes; Carlini et al. 2022's protocol), compared at the largest size; members and "
    "non-members are the pool's candidates the target did and did not train on. LiRA runs offline (each "
    "candidate's OUT shadows) and online (IN against OUT).",
)


def _number(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def _ours(outcome: Outcome) -> str:
    if outcome.series:
        return ", ".join(f"{m}: {v:.3g}" for m, v in outcome.series)
    m = outcome.ours
    if m is None:
        return "—"
    text = f"{m.value:.4g}"
    if m.low is not None and m.high is not None:
        text += f" [{m.low:.4g}, {m.high:.4g}]"
    if outcome.versus is not None:
        text += f" (vs {outcome.versus.value:.4g})"
    return text


def _published(claim: Mapping[str, Any]) -> str:
    value = claim["published"]
    if isinstance(value, list):
        return ", ".join("·" if v is None else f"{v:.3g}" for v in value)
    text = _number(value)
    if "versus" in claim and claim["versus"].get("published") is not None:
        text += f" (vs {_number(claim['versus']['published'])})"
    return text


def _rule(rule: Mapping[str, Any]) -> str:
    kind = rule["kind"]
    if kind == "abs":
        return f"within {rule['tol']:g} abs."
    if kind == "rel":
        return f"within {rule['tol']:.0%} rel."
    if kind in ("at_least", "at_most"):
        return f"{'≥' if kind == 'at_least' else '≤'} {rule.get('value', 'published')}"
    if kind in ("below", "above"):
        return f"95% interval {kind} {rule.get('value', 'published')}"
    return {"direction": "same direction", "decreasing": "ordering: decreasing",
            "increasing": "ordering: increasing"}[kind]


def _where(claim: Mapping[str, Any]) -> str:
    dataset = claim.get("dataset")
    return claim["where"] + (f" ({dataset})" if dataset and dataset not in claim["where"] else "")


def claims_table(outcomes: Sequence[Outcome]) -> str:
    """One row per claim; a claim that missed carries its measured cause (claims.yaml 'cause') in the last column."""
    rows = [[o.claim["quantity"], _where(o.claim), _published(o.claim), _ours(o), _rule(o.claim["rule"]),
             o.verdict + (f": {o.reason}" if o.reason else ""), o.cause] for o in outcomes]
    return "\n".join(markdown_table(["claim", "where", "published", "ours [95% interval]", "rule", "verdict",
                                     "cause (measured)"], rows))


def verdict_counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = Counter(o.verdict for o in outcomes)
    return {v: counts.get(v, 0) for v in VERDICTS}


def headline_counts(outcomes: Sequence[Outcome], judged: bool) -> dict[str, int]:
    """The counts the report's headline shows: a judging run has no 'not judged', a run that judges nothing shows
    no 'reproduced: 0' beside its 'not judged' (every verdict stays in the metrics file, zeros included)."""
    hidden = (NOT_JUDGED,) if judged else JUDGED
    return {v: n for v, n in verdict_counts(outcomes).items() if v not in hidden}


def section_summary(outcomes: Sequence[Outcome]) -> str:
    """Two or three sentences from the verdicts: how many held, and the largest misses by name."""
    if not outcomes:
        return "No claims of this paper are listed."
    counts = verdict_counts(outcomes)
    measured = len(outcomes) - counts[NOT_RUN] - counts[NOT_COMPARABLE]
    if measured == 0:
        return f"None of its {len(outcomes)} claims is measured at this preset ({outcomes[0].reason})."
    text = f"Of {len(outcomes)} claims, {measured} {'was' if measured == 1 else 'were'} measured at this preset"
    if counts[NOT_JUDGED]:
        text += "; none is judged (report.judge_claims is false)."
    else:
        text += (f": {counts[REPRODUCED]} reproduced, {counts[DIRECTION_ONLY]} in direction only, "
                 f"{counts[NOT_REPRODUCED]} not reproduced.")
    if counts[NOT_COMPARABLE]:
        text += f" {counts[NOT_COMPARABLE]} published on another dataset: not comparable."
    unexplained = sum(o.cause == UNKNOWN_CAUSE for o in outcomes)
    if unexplained:
        text += f" {unexplained} of the misses have no measured cause yet."
    misses = [o for o in outcomes if o.verdict == NOT_REPRODUCED and o.ours is not None
              and isinstance(o.claim["published"], (int, float))]
    misses.sort(key=lambda o: -abs(o.ours.value - o.claim["published"]))
    if misses:
        worst = "; ".join(f"{o.claim['quantity']} ({o.ours.value:.3g} vs {o.claim['published']:.3g})"
                          for o in misses[:3])
        text += f" Furthest from the paper: {worst}."
    return text


def render(outcomes: Sequence[Outcome], papers: Mapping[str, str], run: Mapping[str, Any],
           deviations: Sequence[str], figures: Mapping[str, Sequence[str]], summary_figure: str,
           timestamp: str, findings: Mapping[str, str] | None = None, judged: bool = True) -> str:
    """The whole report as markdown. figures: section group -> figure paths relative to the report; findings:
    section group -> a paragraph of measured results beyond the claims (the membership stage's answer); judged:
    whether the claims were judged (report.judge_claims); a run that judges none opens on NOT_JUDGED_NOTICE."""
    counts = headline_counts(outcomes, judged)
    out = ["# tempered: reproduction report", ""]
    if not judged:
        out += [NOT_JUDGED_NOTICE, ""]
    out += [f"{TIMESTAMP_PREFIX}{timestamp}", "", "## The run", ""]
    out += [f"- **{k}**: {v}" for k, v in run.items()]
    out += ["", "## Verdicts", "",
            ", ".join(f"{v}: **{n}**" for v, n in counts.items()) + f" (of {len(outcomes)} claims).",
            ("" if judged else "This run applies no verdict rule (report.judge_claims is false). ")
            + "Verdicts are computed from the metrics files by the rules in `workflow/claims.yaml`; an abs/rel rule "
            "also passes when the published value lies inside our 95% interval (across seeds, or the bootstrap "
            "interval of a single seed where the metric has one and it holds: never the bootstrap of a maximum "
            "such as best-threshold accuracy). A value published on another dataset than ours is 'not "
            "comparable'. Each claim that missed names its measured cause, or says that none is measured yet.", "",
            f"![Temperature across the pipeline]({summary_figure})", ""]
    for heading, paper_keys, group in SECTIONS:
        section = [o for o in outcomes if o.claim["paper"] in paper_keys]
        out += [f"## {heading}", "", "Papers: " + "; ".join(papers.get(p, p) for p in paper_keys) + ".", "",
                section_summary(section), ""]
        if findings and findings.get(group):
            out += [findings[group], ""]
        out += [claims_table(section), ""]
        out += [f"![{path}]({path})" for path in figures.get(group, ())]
        out.append("")
    out += ["## Deviations from the papers' protocols", ""]
    out += [f"- {d}" for d in deviations]
    return "\n".join(out).rstrip() + "\n"


def _yaml(value: Any) -> str:
    """A config value as the config files spell it (false, null, [a, b]), not as Python prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return str(value)


def preset_deviations(defaults: Mapping[str, Any], config: Mapping[str, Any], prefix: str = "",
                      describe: Callable[[str], str] = lambda key: "") -> list[str]:
    """Every setting where the run's config differs from config.yaml (whose defaults follow the papers). A key
    config.yaml leaves null or unset has no paper value to quote: its line says so, with what the key means
    (describe: dotted key -> its schema description, '' when none)."""
    lines = []
    for key in sorted(set(defaults) | set(config)):
        name = f"{prefix}{key}"
        a, b = defaults.get(key), config.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            lines += preset_deviations(a, b, f"{name}.", describe)
        elif a != b:
            meaning = describe(name)
            if key not in defaults:
                default = "not set in config.yaml" + (f": {meaning}" if meaning else "")
            elif a is None:
                default = "config.yaml: null" + (f"; {meaning}" if meaning else "")
            else:
                default = f"paper-faithful default {_yaml(a)}"
            lines.append(f"`{name}`: {_yaml(b)} ({default})")
    return lines
