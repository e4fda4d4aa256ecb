"""CHANGES.md of a published reference (tempered.stages.report.changes): counts before and after, changed
verdicts and misses, read from two runs' claims.csv."""

import pytest

from tempered.artifacts import ArtifactError
from tempered.stages.report.changes import changed_verdicts, counts_table, misses_table, read_claims, write_changes

HEADER = "id,paper,where,quantity,published,ours,low,high,n_seeds,series,verdict,reason,cause\n"


def _row(claim, paper, verdict, ours="0.5", published="0.4", cause=""):
    return {"id": claim, "paper": paper, "ours": ours, "published": published, "verdict": verdict, "cause": cause}


BEFORE = [_row("s.1", "szegedy2014", "reproduced"), _row("s.2", "szegedy2014", "not reproduced", cause="seed"),
          _row("p.1", "papernot2016", "not run at this preset"), _row("p.gone", "papernot2016", "reproduced")]
AFTER = [_row("s.1", "szegedy2014", "not reproduced", ours="0.01823", published="0.013", cause="dropout"),
         _row("s.2", "szegedy2014", "reproduced"), _row("p.1", "papernot2016", "not run at this preset"),
         _row("q.new", "question", "direction only")]


def test_counts_per_paper_before_and_after_add_up():
    table = counts_table(BEFORE, AFTER)
    assert table[0] == "| paper | reproduced | direction only | not reproduced | not run at this preset | claims |"
    assert "| szegedy2014 | 1 -> 1 | 0 -> 0 | 1 -> 1 | 0 -> 0 | 2 -> 2 |" in table
    assert "| papernot2016 | 1 -> 0 | 0 -> 0 | 0 -> 0 | 1 -> 1 | 2 -> 1 |" in table
    assert "| question | 0 -> 0 | 0 -> 1 | 0 -> 0 | 0 -> 0 | 0 -> 1 |" in table
    assert table[-1] == "| **all** | 2 -> 1 | 0 -> 1 | 1 -> 1 | 1 -> 1 | 4 -> 4 |"


def test_a_first_reference_has_counts_only():
    assert counts_table(None, AFTER)[-1] == "| **all** | 1 | 1 | 1 | 1 | 4 |"


def test_changed_verdicts_name_each_change_with_its_values():
    assert changed_verdicts(BEFORE, AFTER) == [
        "- s.1: reproduced -> not reproduced (ours 0.01823, published 0.013)",
        "- s.2: not reproduced -> reproduced (ours 0.5, published 0.4)",
        "- q.new: new claim -> direction only (ours 0.5, published 0.4)",
        "- p.gone: reproduced -> claim removed (ours 0.5, published 0.4)",
    ]


def _write(directory, rows, version):
    (directory / "tables").mkdir(parents=True)
    lines = [",".join([r["id"], r["paper"], "", "", r["published"], r["ours"], "", "", "1", "", r["verdict"], "",
                       r["cause"]]) for r in rows]
    (directory / "tables" / "claims.csv").write_text(HEADER + "\n".join(lines) + "\n")
    (directory / "REPORT.md").write_text(f"# Report\n\n- **report code version**: {version}\n")


def test_changes_file_reads_both_runs_and_names_their_code(tmp_path):
    _write(tmp_path / "old", BEFORE, "0.1.0+gaaaa")
    _write(tmp_path / "new", AFTER, "0.1.0+gbbbb")
    write_changes(tmp_path / "old", tmp_path / "new", tmp_path / "CHANGES.md")
    text = (tmp_path / "CHANGES.md").read_text()
    assert "(code 0.1.0+gbbbb) and of the reference it replaced (code 0.1.0+gaaaa)" in text
    assert "- s.1: reproduced -> not reproduced (ours 0.01823, published 0.013)" in text
    assert "## The 1 not reproduced, with the cause each states" in text
    assert "| s.1 | 0.01823 | 0.013 | dropout |" in text


def test_a_first_reference_says_there_was_none(tmp_path):
    _write(tmp_path / "new", AFTER, "0.1.0+gbbbb")
    write_changes(tmp_path / "old", tmp_path / "new", tmp_path / "CHANGES.md")
    text = (tmp_path / "CHANGES.md").read_text()
    assert "reference it replaced (none)" in text and "## Claims whose verdict changed" not in text
    assert "| **all** | 1 | 1 | 1 | 1 | 4 |" in text


@pytest.mark.parametrize(("content", "message"), [
    ("id,paper,verdict\ns,p,reproduced\n", "no column ours, published, cause"),
    ("id,paper,ours,published,verdict,cause\ns,p,1,1,passed,\n", "line 2: verdict 'passed' is not one of"),
])
def test_a_claims_file_it_cannot_read_is_named(tmp_path, content, message):
    (tmp_path / "claims.csv").write_text(content)
    with pytest.raises(ArtifactError, match=message):
        read_claims(tmp_path / "claims.csv")


def test_a_cause_with_a_bar_or_a_line_break_stays_in_its_cell():
    table = misses_table([_row("s.1", "szegedy2014", "not reproduced", cause="a | b\nc")])
    assert table[-1] == "| s.1 | 0.5 | 0.4 | a \\| b c |"
