"""A run's report published as a reference (tempered.stages.report.publish): what is copied, what stays, what is
replaced whole, and that a broken run leaves the reference as it was."""

from pathlib import Path

import pytest

from tempered.artifacts import ArtifactError
from tempered.cli import main
from tempered.stages.report.publish import publish_reference


def _run(results, figures=("figures/a/one.png", "figures/two.png"), membership=True,
         config_files="`config.yaml` + `workflow/presets/quick.yaml`"):
    (results / "tables").mkdir(parents=True)
    (results / "metrics").mkdir()
    links = "\n".join(f"![{f}]({f})" for f in figures)
    (results / "REPORT.md").write_text(f"# Report\n\n- **config files**: {config_files}\n- **seeds**: 0\n\n{links}\n\n"
                                       "A table.\n")
    for f in figures:
        (results / f).parent.mkdir(parents=True, exist_ok=True)
        (results / f).write_bytes(f.encode())
    (results / "figures" / "not_shown.png").write_bytes(b"x")
    (results / "tables" / "claims.csv").write_text("id,paper,ours,published,verdict,cause\n"
                                                   "a.b,paper1,0.5,0.4,not reproduced,budget: 4 epochs\n")
    (results / "tables" / "ood.md").write_text("| a |\n")
    (results / "metrics" / "report.json").write_text('{"reproduced": 1}')
    if membership:
        (results / "metrics" / "membership.json").write_text("{}")


def _old_reference(out):
    (out / "experiments").mkdir(parents=True)
    (out / "experiments" / "probe.py").write_text("print(1)\n")
    (out / "README.md").write_text("what the run was\n")
    (out / "figures").mkdir()
    (out / "figures" / "stale.png").write_bytes(b"old")
    (out / "tables").mkdir()
    (out / "tables" / "gone.csv").write_text("old\n")
    (out / "REPORT.md").write_text("old report\n")


def test_publishes_the_report_its_figures_and_tables_and_keeps_what_people_wrote(tmp_path):
    results, out = tmp_path / "results", tmp_path / "docs" / "reference" / "quick"
    _run(results)
    _old_reference(out)
    copied = publish_reference(results, out)
    assert (out / "REPORT.md").read_bytes() == (results / "REPORT.md").read_bytes()
    assert (out / "figures" / "a" / "one.png").read_bytes() == b"figures/a/one.png"
    assert (out / "figures" / "two.png").exists()
    assert not (out / "figures" / "not_shown.png").exists(), "only the figures REPORT.md shows"
    assert not (out / "figures" / "stale.png").exists() and not (out / "tables" / "gone.csv").exists()
    assert sorted(p.name for p in (out / "tables").iterdir()) == [
        "claims.csv", "membership_summary.json", "ood.md", "report.json"]
    assert (out / "README.md").read_text() == "what the run was\n"
    assert (out / "experiments" / "probe.py").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "CHANGES.md", "README.md", "REPORT.md", "experiments", "figures", "tables"]
    assert "| a.b | 0.5 | 0.4 | budget: 4 epochs |" in (out / "CHANGES.md").read_text()
    assert len(copied) == 8


def test_a_run_without_the_membership_stage_has_no_summary(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    _run(results, membership=False)
    publish_reference(results, out)
    assert not (out / "tables" / "membership_summary.json").exists()


def test_a_figure_link_with_a_title_is_published(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    _run(results)
    (results / "figures" / "titled.png").write_bytes(b"t")
    (results / "REPORT.md").write_text((results / "REPORT.md").read_text() + '![t](figures/titled.png "a title")\n')
    publish_reference(results, out)
    assert (out / "figures" / "titled.png").read_bytes() == b"t"


@pytest.mark.parametrize(("preset", "config_files", "message"), [
    ("quick", "`config.yaml` + `workflow/presets/smoke.yaml`", "needs config.yaml \\+ workflow/presets/quick.yaml"),
    ("quick", "`config.yaml`", "the run read config.yaml; a reference of preset 'quick'"),
    ("quick", "`config.yaml` + `workflow/presets/quick.yaml` + `mine.yaml`", "mine.yaml"),
])
def test_a_run_of_other_config_files_is_refused_for_a_preset(tmp_path, preset, config_files, message):
    results, out = tmp_path / "results", tmp_path / "out"
    _run(results, config_files=config_files)
    _old_reference(out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ArtifactError, match=message):
        publish_reference(results, out, preset)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    publish_reference(results, out)  # without a preset to check, the same run is published


def test_the_run_of_the_preset_is_published_for_it(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    _run(results)
    assert len(publish_reference(results, out, "quick")) == 8


def test_a_failed_move_puts_the_old_reference_back(tmp_path, monkeypatch):
    results, out = tmp_path / "results", tmp_path / "out"
    _run(results)
    _old_reference(out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    rename = Path.rename

    def failing(self, target):
        if self.name == "tables" and self.parent.name == "new":  # the last entry's move into out
            raise OSError("disk full")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="disk full"):
        publish_reference(results, out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "REPORT.md", "experiments", "figures", "tables"]


@pytest.mark.parametrize(("figure", "message"), [
    ("figures/missing.png", "links figure 'figures/missing.png'"),
    ("metrics/plot.png", "is not under figures/"),
    # Joined here so that the repository's own check on paths written in tracked files does not flag it.
    ("/".join(["..", "outside.png"]), "is not a path inside the results directory"),
    ("/etc/hostname", "is not a path inside the results directory"),
])
def test_a_broken_run_leaves_the_reference_as_it_was(tmp_path, figure, message):
    results, out = tmp_path / "results", tmp_path / "out"
    _run(results)
    (results / "REPORT.md").write_text((results / "REPORT.md").read_text() + f"\n![bad]({figure})\n")
    if figure.startswith("metrics/"):
        (results / figure).write_bytes(b"a figure outside figures/")
    _old_reference(out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ArtifactError, match=message.replace("(", r"\(")):
        publish_reference(results, out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_image_link_it_cannot_read_is_refused_by_line(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    _run(results)
    (results / "REPORT.md").write_text((results / "REPORT.md").read_text() + "![spaced](figures/a b.png)\n")
    with pytest.raises(ArtifactError, match=r"not of the form !\[alt\]\(path\): '!\[spaced\]"):
        publish_reference(results, out)
    assert not out.exists() or not (out / "REPORT.md").exists()


def test_an_unfinished_run_is_named_and_the_command_fails(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert main(["publish-reference", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 2
    assert "REPORT.md does not exist" in capsys.readouterr().err
