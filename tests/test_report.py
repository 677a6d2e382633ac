"""The numbers of the docs come from the committed results (`pyanode.experiments.report`): every
marked region equals what its results give, an edited number or a result committed without
regenerating the docs is caught, the documented runs store what the docs are rendered from with
their provenance and resume, and the docs link only inside the repository."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from pyanode._errors import SpecError
from pyanode.cli import main
from pyanode.cli._experiments import REPRODUCTIONS, reproduction
from pyanode.experiments import report
from pyanode.experiments.report import DATA, DONE, JOBS, PROVENANCE, Job, run_job
from pyanode.experiments.report_tables import REGIONS
from pyanode.experiments.table1 import boundary_regions, grid_points

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The documents and docs/data of the repository, copied (to be edited)."""
    for path in report.documents(REPO):
        target = tmp_path / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    shutil.copytree(REPO / DATA, tmp_path / DATA)
    return tmp_path


def _first_number_in(path: Path, name: str) -> tuple[int, re.Match]:
    """The line index and match of the first decimal number inside region `name` of `path`."""
    lines = path.read_text().splitlines()
    region = next(r for r in report.regions(path) if r.name == name)
    for i in range(region.start + 1, region.end):
        match = re.search(r"\d+\.\d+", lines[i])
        if match:
            return i, match
    raise AssertionError(f"no number in region {name}")


def test_docs_match_the_results_they_come_from():
    """The CI check: every marked region of README.md, docs/*.md and benchmarks/README.md is
    exactly what `pyanode report` generates from docs/data (run it after changing either)."""
    stale = report.check(REPO)
    assert not stale, "\n".join(s.diff() for s in stale) + "\nrun `pyanode report` to regenerate"


def test_every_region_is_shown_once_in_its_own_document():
    shown = [r.name for path in report.documents(REPO) for r in report.regions(path, root=REPO)]
    assert sorted(shown) == sorted(REGIONS)


def test_a_number_edited_by_hand_is_caught_and_regenerated(repo_copy, capsys):
    doc = repo_copy / "docs" / "experiments.md"
    i, match = _first_number_in(doc, "table1")
    lines = doc.read_text().splitlines()
    edited = str(float(match[0]) + 1.0)
    lines[i] = lines[i][: match.start()] + edited + lines[i][match.end() :]
    doc.write_text("\n".join(lines) + "\n")

    stale = report.check(repo_copy)
    assert [(s.region.path, s.region.name) for s in stale] == [(doc, "table1")]
    assert f"-{lines[i]}" in stale[0].diff()
    assert main(["report", "--check", "--root", str(repo_copy)]) == 1
    assert "1 stale region(s)" in capsys.readouterr().out

    assert main(["report", "--root", str(repo_copy)]) == 0
    assert report.check(repo_copy) == []
    assert doc.read_text() == (REPO / "docs" / "experiments.md").read_text()


def test_results_committed_without_regenerating_the_docs_are_caught(repo_copy):
    path = repo_copy / DATA / "table1" / "summary.json"
    summary = json.loads(path.read_text())
    summary["rows"][0]["test_acc"][0] -= 0.5
    path.write_text(json.dumps(summary))
    names = {s.region.name for s in report.check(repo_copy)}
    assert {"table1", "table1-figure2"} <= names and "dupont-1d" not in names


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<!-- report:nothing -->\n<!-- /report:nothing -->", "region 'nothing' is not known"),
        ("<!-- report:table1 -->\ntext", "region 'table1' is never closed"),
        ("<!-- /report:table1 -->", "region 'table1' closes without being opened"),
        ("<!-- report:table1 -->\n<!-- report:dupont-1d -->", "opens inside region 'table1'"),
        ("<!-- report:bench-memory -->\n<!-- /report:bench-memory -->",
         "belongs in benchmarks/README.md"),
    ],
)  # fmt: skip
def test_broken_markers_are_refused_with_their_place(tmp_path, text, match):
    path = tmp_path / "docs" / "experiments.md"
    path.parent.mkdir()
    path.write_text("# title\n" + text + "\n")
    with pytest.raises(SpecError, match=re.escape(match)) as err:
        list(report.regions(path, root=tmp_path))
    assert f"{path}:2" in str(err.value) or f"{path}:3" in str(err.value)


def test_every_documented_run_has_its_results_and_provenance_committed():
    """Each run keeps what the docs are rendered from (a reproduction its summary.json) and its
    provenance: command, settings, machine, threads, library versions, commit, date, time."""
    for job in JOBS:
        if job.words[:1] == ("reproduce",):
            assert "summary.json" in job.keep
        folder = REPO / DATA / job.name
        for name in [*job.keep, *([job.stdout] if job.stdout else []), PROVENANCE]:
            assert (folder / name).exists(), f"{folder / name} is missing: run `pyanode report "
            f"--rerun --jobs {job.name}`"
        p = json.loads((folder / PROVENANCE).read_text())
        assert p["documented_command"] == job.shown() and p["settings"]
        assert p["machine"]["cpu"] and p["machine"]["threads"] == 1 and p["machine"]["torch"]
        assert p["git_commit"] and p["date"]
        # a provenance reconstructed after the run may not know its wall time
        assert p.get("reconstructed") or p["wall_seconds"] > 0


def test_docs_link_only_to_files_of_the_repository():
    """No ../shared (or other outside) links: every relative link of README.md and docs/
    resolves to a file or folder inside the repository."""
    link = re.compile(r"\]\(([^)\s]+)\)")
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text()
        assert "../shared" not in text, path
        for target in link.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (path.parent / target.split("#")[0]).resolve()
            assert resolved.exists() and REPO in resolved.parents, (path, target)


def test_every_reproduction_writes_a_summary(tmp_path):
    """docs/experiments.md: every reproduction folder has a summary.json; dupont-flows, which
    wrote none before the one runner, through the command line."""
    from pyanode.experiments.reproduce import Reproduction

    for name in REPRODUCTIONS:
        assert isinstance(reproduction(name), Reproduction)
    argv = ["reproduce", "dupont-flows", "--out", str(tmp_path), "--no-figures", "--panels",
            "identity", "--g1d-epochs", "2", "--g1d-points", "8", "--n-probe", "4"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary) == ['panel="identity" model="node" seed=0']
    assert summary['panel="identity" model="node" seed=0']["status"] == "ok"


def test_a_documented_run_resumes_and_keeps_its_provenance(tmp_path, capfd):
    """`run_job`: the command's files and provenance land in docs/data; a finished run is not
    run again; a run that stopped before its end is run again and its finished trials skipped."""
    job = Job("tiny", ("reproduce", "dupont-nfe", "--dim", "1", "--seeds", "1", "--epochs", "1",
                       "--n-inner", "20", "--n-outer", "40", "--no-figures", "--out", "{out}"),
              ("summary.json", "config.json"), estimate=5)  # fmt: skip
    results, logged = Path("results"), []
    first = run_job(job, tmp_path, results, python=_python(), log=logged.append)
    assert first.ran and first.error is None
    provenance = json.loads((tmp_path / DATA / "tiny" / PROVENANCE).read_text())
    assert provenance["fresh"] and provenance["trials"] == 2
    assert provenance["settings"]["epochs"] == 1 and provenance["machine"]["threads"] == 1
    assert (
        provenance["documented_command"] == "pyanode reproduce dupont-nfe --dim 1 --seeds 1 "
        "--epochs 1 --n-inner 20 --n-outer 40 --no-figures"
    )
    summary = (tmp_path / DATA / "tiny" / "summary.json").read_bytes()
    assert summary == (tmp_path / results / "tiny" / "summary.json").read_bytes()

    again = run_job(job, tmp_path, results, python=_python(), log=logged.append)
    assert not again.ran and again.error is None

    (tmp_path / results / "tiny" / DONE).unlink()  # as if stopped after its trials
    capfd.readouterr()
    third = run_job(job, tmp_path, results, python=_python(), log=logged.append)
    assert third.ran and third.error is None
    assert "[2/2] done before, skipped" in capfd.readouterr().err  # the runner's progress
    assert not json.loads((tmp_path / DATA / "tiny" / PROVENANCE).read_text())["fresh"]


def _python() -> str:
    import sys

    return sys.executable


def test_the_dry_run_says_what_would_run_and_how_long(tmp_path, capsys):
    assert main(["report", "--dry-run", "--root", str(REPO), "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(job.shown(tmp_path / job.name) in out for job in JOBS)
    assert re.search(rf"{len(JOBS)} run\(s\) into .*, about \d+ min in all", out)
    with pytest.raises(SystemExit):
        main(["report", "--dry-run", "--jobs", "table2"])


def _grid(fill) -> np.ndarray:
    """Fig. 2's grid (60 x 60) of classes from `fill(radius, x, y)`."""
    xs, points = grid_points(60)
    x, y = points[:, 0].reshape(60, 60), points[:, 1].reshape(60, 60)
    return fill(np.hypot(x, y), x, y)


def test_figure2_measures_what_a_panel_shows():
    """A clean panel (disks inside the annulus, the rest drawn as annulus), one whose right disk
    reaches out through the annulus along the x axis, and one whose right disk takes the left."""

    def clean(r, x, y):
        return np.where(r < 1.1, np.where(x < 0, 0, 1), 2)

    def leaking(r, x, y):
        return np.where((r < 1.1) | ((np.abs(y) < 0.2) & (x > 0)), np.where(x < 0, 0, 1), 2)

    def mixed(r, x, y):
        return np.where(r < 1.1, np.where(x < -0.6, 0, 1), 2)

    ok = boundary_regions(_grid(clean), 60)
    assert ok == {"leaks": False, "disks_correct": 1.0, "annulus_correct": 1.0,
                  "outside_correct": 1.0}  # fmt: skip
    leak = boundary_regions(_grid(leaking), 60)
    assert leak["leaks"] and leak["disks_correct"] == 1.0 and leak["annulus_correct"] < 1.0
    mix = boundary_regions(_grid(mixed), 60)
    assert not mix["leaks"] and 0.4 < mix["disks_correct"] < 0.9
