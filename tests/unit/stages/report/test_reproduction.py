"""results/REPORT.md as rendered from outcomes, without a pipeline run: a run that judges no claim says so before
anything else and shows no verdict a rule would hand out; the deviations list quotes a paper value only where
config.yaml has one."""

from __future__ import annotations

from tempered.config import SCHEMA_PATH, read_yaml
from tempered.stages.report.claims import NOT_JUDGED, NOT_JUDGED_REASON, NOT_RUN, REPRODUCED, Measurement, Outcome
from tempered.stages.report.reproduction import NOT_JUDGED_NOTICE, TIMESTAMP_PREFIX, preset_deviations, render
from tempered.stages.report.steps import schema_description


def _claim(claim_id: str, paper: str = "guo2017") -> dict:
    return {"id": claim_id, "paper": paper, "where": "Table 1", "quantity": claim_id, "published": 0.5,
            "rule": {"kind": "abs", "tol": 0.01}}


def _render(outcomes: list[Outcome], judged: bool) -> str:
    return render(outcomes, {"guo2017": "Guo et al. 2017"}, {"config files": "`config.yaml`"}, [], {}, "s.png",
                  "2000-01-01 00:00 UTC", judged=judged)


def test_a_run_that_judges_no_claim_says_so_first_and_shows_no_verdict():
    ours = Measurement(0.52, 0.1, 0.9, 1)
    outcomes = [Outcome(_claim("a"), NOT_JUDGED, ours, reason=NOT_JUDGED_REASON),
                Outcome(_claim("b"), NOT_JUDGED, ours, reason=NOT_JUDGED_REASON),
                Outcome(_claim("c"), NOT_RUN, reason="model(s) ['x'] not trained at this preset")]
    lines = _render(outcomes, judged=False).splitlines()
    assert lines[2] == NOT_JUDGED_NOTICE and lines[4].startswith(TIMESTAMP_PREFIX)
    assert "numbers mean nothing" in NOT_JUDGED_NOTICE and "not judged" in NOT_JUDGED_NOTICE
    headline = next(line for line in lines if line.endswith("(of 3 claims)."))
    assert headline == "not comparable: **0**, not run at this preset: **1**, not judged: **2** (of 3 claims)."
    text = "\n".join(lines)
    assert "reproduced" not in text and "direction only" not in text
    assert "Of 3 claims, 2 were measured at this preset; none is judged" in text
    assert "| 0.52 [0.1, 0.9] |" in text  # our value and interval stay


def test_a_judging_run_has_no_notice_and_no_not_judged_count():
    outcomes = [Outcome(_claim("a"), REPRODUCED, Measurement(0.5, None, None, 1))]
    text = _render(outcomes, judged=True)
    assert NOT_JUDGED_NOTICE not in text and NOT_JUDGED not in text
    assert "reproduced: **1**, direction only: **0**, not reproduced: **0**" in text
    assert "Of 1 claims, 1 was measured at this preset: 1 reproduced" in text


def test_deviations_quote_a_paper_value_only_where_config_yaml_sets_one():
    defaults = {"limit": None, "epochs": 50, "models": {"fc10": {"epochs": 3}}, "names": ["a", "b"]}
    config = {"limit": 2000, "epochs": 2, "models": {"fc10": {"epochs": 3, "enabled": False}}, "names": ["a"]}
    meanings = {"limit": "null means all", "models.fc10.enabled": "default true"}
    lines = preset_deviations(defaults, config, describe=lambda key: meanings.get(key, ""))
    assert lines == ["`epochs`: 2 (paper-faithful default 50)",
                     "`limit`: 2000 (config.yaml: null; null means all)",
                     "`models.fc10.enabled`: false (not set in config.yaml: default true)",
                     "`names`: [a] (paper-faithful default [a, b])"]
    assert not any("None" in line or "False" in line for line in lines)
    assert preset_deviations({"limit": None}, {"limit": 5}) == ["`limit`: 5 (config.yaml: null)"]


def test_the_schema_says_what_a_null_or_unset_key_means():
    schema = read_yaml(SCHEMA_PATH)
    assert "null means all" in schema_description(schema, "evaluation.limit_eval")  # through $ref
    assert "default true" in schema_description(schema, "models.cnn.enabled")  # a model under models.<name>
    assert "each model's own" in schema_description(schema, "membership.epochs")
    assert "smoke" in schema_description(schema, "report.judge_claims")
    assert schema_description(schema, "models.cnn.no_such_key") == ""


class _Snakemake:
    """What Snakemake hands a report caption's template: the config, a job's wildcards."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.wildcards = {"model": "cnn", "seed": "0"}


def _render_rst(path, config: dict) -> str:
    """A caption as `snakemake --report` renders it (Jinja, then docutils), failing on any RST warning (an
    undefined substitution such as |x| turns into an error paragraph inside report.html)."""
    import jinja2
    from docutils.core import publish_parts

    text = jinja2.Template(path.read_text()).render(snakemake=_Snakemake(config))
    return publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})["html_body"]


def test_every_caption_renders_and_the_intro_warns_only_on_a_run_that_judges_nothing():
    from tempered.config import REPO_ROOT, load_config

    config = load_config([REPO_ROOT / "config.yaml"])
    smoke = load_config([REPO_ROOT / "config.yaml", REPO_ROOT / "workflow/presets/smoke.yaml"])
    for caption in sorted((REPO_ROOT / "workflow/report").glob("*.rst")):
        _render_rst(caption, config)
    intro = REPO_ROOT / "workflow/report/workflow.rst"
    assert "numbers mean nothing" in _render_rst(intro, smoke)
    judged = _render_rst(intro, config)
    assert "numbers mean nothing" not in judged and "five questions" in judged


def test_every_rule_kind_in_the_claims_file_renders():
    """The report's claims table names each claim's rule in words: a rule kind it cannot name would stop the
    report, and smoke judges no claim, so every claim of workflow/claims.yaml is rendered here."""
    from tempered.config import REPO_ROOT
    from tempered.stages.report.claims import RULE_KINDS, load_claims
    from tempered.stages.report.reproduction import claims_table

    claims = load_claims(REPO_ROOT / "workflow" / "claims.yaml")
    text = claims_table([Outcome(c, NOT_RUN, reason="not run") for c in claims])
    assert len(text.splitlines()) == len(claims) + 2
    assert {c["rule"]["kind"] for c in claims} <= set(RULE_KINDS)
    assert "95% interval below 0" in text  # the project's own question
    assert "95% interval above 0" in text  # how much more the robust model leaks
