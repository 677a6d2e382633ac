"""A batch of trials (`pyanode.experiments.batch`) under the faults that are not clean kills:
issue 16, never lose a result (part two).

One test per numbered fault of the issue, then its "also fix" list. Each reproduces the fault
(a worker that kills itself as the out-of-memory killer would, a full disk, a killed parent, a
double Ctrl-C, damaged files, a user's mistake) and checks the promise: nothing finished is lost,
what is not the trial's fault is never recorded as its failure, and a user's mistake is one line
naming the fix, with exit code 2, before any work.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import fault_helpers
import pytest
import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pyanode
from pyanode import ModelSpec, RunSpec, SolverSpec, TrainSpec
from pyanode._errors import FolderError, StoreError
from pyanode.cli import main
from pyanode.experiments import store
from pyanode.experiments.batch import TrialFailed, run_trials
from pyanode.experiments.engines import DaskEngine, InProcess, LocalPool
from pyanode.experiments.runner import Record, RunOptions, Trial, run_trial
from pyanode.experiments.store import (
    CHECKPOINT,
    RESULT,
    SPEC,
    collect,
    read_csv,
    read_result,
    trial_id,
)
from pyanode.experiments.sweep import Sweep, run_sweep

REPO = Path(__file__).resolve().parents[1]

# 60 points, 48 for training: 3 batches of 16 per epoch
TINY = RunSpec(
    dataset="concentric-spheres",
    dataset_kwargs={"n_inner": 20, "n_outer": 40},
    model=ModelSpec(hidden=8),
    solver=SolverSpec(rtol=1e-3, atol=1e-4, max_steps=200),
    train=TrainSpec(epochs=1, batch_size=16, lr=1e-2),
)


def _config(grid: dict[str, list], epochs: int = 1) -> str:
    """A sweep config (TOML): TINY with `epochs` as its base, and `grid`."""
    base = tomllib.loads(TINY.replace(train=TINY.train.replace(epochs=epochs)).to_toml())
    return tomli_w.dumps({"base": base, "grid": grid})


TWO_SEEDS = _config({"train.seed": [0, 1]})


def _seeds(*seeds: int, epochs: int = 1) -> list[RunSpec]:
    return [TINY.replace(train=TINY.train.replace(seed=s, epochs=epochs)) for s in seeds]


def _cli(*argv, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    """`pyanode argv` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "pyanode.cli", *map(str, argv)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def _one_line_error(stderr: str) -> str:
    """The one line a user's mistake or a disk failure prints (no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _last_line(stderr: str) -> str:
    """The line that ends a run (after its progress lines); never a traceback."""
    assert "Traceback" not in stderr, stderr
    return stderr.splitlines()[-1]


def _temporary_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, list[str]]:
    """A finished sweep of two tiny trials (copy it before damaging it)."""
    out = tmp_path_factory.mktemp("finished")
    report = run_sweep(Sweep.from_toml(TWO_SEEDS), out / "out", engine=InProcess())
    (out / "sweep.toml").write_text(TWO_SEEDS)
    assert len(report.ok) == 2
    return out, report.ids


@pytest.fixture
def sweep_copy(finished, tmp_path) -> tuple[Path, Path, list[str]]:
    """(config, out, ids): a copy of `finished` to damage."""
    source, ids = finished
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    return tmp_path / "sweep.toml", tmp_path / "out", ids


# -- 1, 6: a worker that dies ---------------------------------------------------------------------
def _dying_trials(tmp_path: Path) -> list[Trial]:
    """A healthy trial, one whose worker is killed once, one that always kills its worker."""
    healthy, once, always = _seeds(0, 1, 2)
    marker = str(tmp_path / "killed-once")
    return [
        Trial(healthy, {"trial": "healthy"}),
        Trial(
            once,
            {"trial": "killed once"},
            Record(arrays=functools.partial(fault_helpers.kill_own_process_once, marker=marker)),
        ),  # fmt: skip
        Trial(
            always, {"trial": "always killed"}, Record(arrays=fault_helpers.kill_own_process)
        ),  # fmt: skip
    ]


def _check_dying(report, trials: list[Trial], signal_name: str | None) -> None:
    healthy, once, always = (t.id for t in trials)
    assert report.ok == [healthy, once] and report.failed == [always]
    died = report.results[always]
    assert (died["error"], died["reason"], died["attempts"]) == ("WorkerDied", "worker_died", 2)
    assert died["signal"] == signal_name
    assert "died in each of 2 attempt(s)" in died["message"]
    assert read_result(report.out / always) == died  # stored, from the sweep's process
    # the trial killed once ran again and resumed from its checkpoint after its last epoch
    assert report.results[once]["resumed_epoch"] == 1
    assert "FAILED" in report.summary() and "WorkerDied (worker_died)" in report.summary()


def test_1_6_a_worker_that_dies_is_replaced_and_a_trial_that_always_kills_it_fails(tmp_path):
    """(1) A trial whose worker is SIGKILLed every time (as by the OOM killer) is recorded as
    failed, with the signal, after a bounded number of attempts while the others finish; (6) a
    worker killed once is replaced and its trial runs again. A rerun counts the failure as done
    instead of aborting again."""
    trials = _dying_trials(tmp_path)
    engine = LocalPool(workers=2, attempts=2)
    report = run_trials(trials, tmp_path / "out", engine=engine)
    _check_dying(report, trials, "SIGKILL")
    again = run_trials(trials, tmp_path / "out", engine=engine)
    assert again.skipped == [t.id for t in trials] and again.failed == [trials[2].id]


@pytest.mark.slow
def test_1_a_trial_that_always_kills_its_dask_worker_is_recorded_as_failed(tmp_path):
    """(1) on Dask: its workers die as often as the scheduler allows (attempts), then the trial
    is recorded as failed with the signal (reported by pyanode's nanny plugin) and the others
    finish; a worker killed once is replaced by Dask and its trial runs again."""
    pytest.importorskip("distributed")
    trials = _dying_trials(tmp_path)
    report = run_trials(trials, tmp_path / "out", engine=DaskEngine(workers=2, attempts=2))
    _check_dying(report, trials, "SIGKILL")


# -- 2: another run's folder ----------------------------------------------------------------------
def test_2_a_folder_holding_another_run_is_never_written_into(tmp_path, capsys):
    """`pyanode train --out ow` twice with other settings, `pyanode.run(B)` into A's folder, and
    `run_trial(B)` on A's finished folder whose spec.toml is gone: each is refused (the trial id
    is verified on every read) and A's files are untouched; --overwrite replaces them."""
    argv = ["train", "--dataset", "concentric-spheres", "--dataset-arg", "n_inner=20",
            "--dataset-arg", "n_outer=40", "--hidden", "8", "--no-progress"]  # fmt: skip
    out = tmp_path / "ow"
    assert main([*argv, "--epochs", "1", "--seed", "0", "--out", str(out)]) == 0
    first = (out / RESULT).read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--epochs", "2", "--seed", "5", "--out", str(out)])
    assert exit_info.value.code == 2
    line = _one_line_error(capsys.readouterr().err)
    assert re.search(r"holds another run \(trial \w{12}, not \w{12}\); use another folder, or "
                     r"--overwrite", line), line  # fmt: skip
    assert (out / RESULT).read_bytes() == first

    a, b = _seeds(0, 5)
    run_trial(a, tmp_path / "a")
    with pytest.raises(FolderError, match=r"holds another run"):
        pyanode.run(b, tmp_path / "a")
    assert store.stored_id(tmp_path / "a") == trial_id(a)  # no checkpoint of B beside A's spec
    (tmp_path / "a" / SPEC).unlink()
    with pytest.raises(FolderError, match=r"spec\.toml is missing"):
        run_trial(b, tmp_path / "a")
    with pytest.raises(FolderError, match=r"spec\.toml is missing"):
        run_trial(a, tmp_path / "a")  # not even A's own result without its spec
    replaced = run_trial(b, tmp_path / "a", options=RunOptions(overwrite=True))
    assert replaced["trial_id"] == trial_id(b) == store.stored_id(tmp_path / "a")


# -- 3, 10: damaged files -------------------------------------------------------------------------
def _damage(folder: Path, name: str, content: bytes) -> None:
    (folder / name).write_bytes(content)


DAMAGE = {
    "result.json empty": (RESULT, b"", r"result\.json cannot be read \(the file is empty\)"),
    "result.json truncated": (RESULT, b'{"schema_version": 1, "sta', r"result\.json cannot be "),
    "result.json a list": (RESULT, b"[]", r"result\.json is not a pyanode trial file"),
    "spec.toml not UTF-8": (
        SPEC,
        b"\xff\xfe[model]\n",
        r"spec\.toml cannot be read: "
        r"UnicodeDecodeError",
    ),
    "spec.toml hand-edited": (SPEC, None, r"spec\.toml does not match the trial id .*edited"),
    "checkpoint.pt empty": (
        CHECKPOINT,
        b"",
        r"checkpoint\.pt cannot be read \(the file is "
        r"empty\): \w+.*; delete checkpoint\.pt to restart the trial",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_3_10_a_damaged_trial_is_reported_by_file_and_never_stops_the_others(
    sweep_copy, capsys, damage
):
    """(3) A zero-byte, truncated or non-object result.json, a non-UTF-8 spec.toml, an empty
    checkpoint; (10) a spec.toml edited by hand in a finished trial (it would put lr = 0.5 beside
    the metrics of lr = 0.01). The sweep and collect name the file, list the trial as damaged,
    never read it as a result and go on with the others; nothing is deleted."""
    config, out, ids = sweep_copy
    name, content, message = DAMAGE[damage]
    folder = out / ids[0]
    if name == SPEC and content is None:
        content = (folder / SPEC).read_bytes().replace(b"lr = 0.01", b"lr = 0.5")
    if name == CHECKPOINT:
        (folder / RESULT).unlink()  # an interrupted trial whose checkpoint is damaged
    _damage(folder, name, content)

    assert main(["sweep", str(config), "--out", str(out), "--engine", "inline"]) == 1
    printed = capsys.readouterr().out
    assert "2 trial(s): 1 ok, 0 failed, 1 damaged (1 already done, skipped)" in printed
    assert re.search(rf"DAMAGED {ids[0]} \[train\.seed=0\] not run: .*{message}", printed)
    assert (folder / name).read_bytes() == content  # left as it was, for the user to decide
    rows = {r["trial_id"] or r["folder"]: r for r in read_csv(out / "results.csv")}
    assert rows[ids[1]]["status"] == "ok"
    damaged = rows.get(ids[0]) or rows[ids[0]]
    assert damaged["status"] == "damaged" and re.search(message, damaged["message"])
    assert damaged.get("test_acc", "") == "" and damaged.get("train.lr", "") == ""
    if name == SPEC:
        with pytest.raises(SystemExit) as exit_info:  # a single trial: a one-line error
            main(["train", "--config", str(folder / SPEC), "--out", str(folder)])
        assert exit_info.value.code == 2
    argv = ["sweep", str(config), "--out", str(out), "--engine", "inline", "--overwrite"]
    assert main(argv) == 0  # the fix the message names
    assert [r["status"] for r in collect(out)] == ["ok", "ok"]


@pytest.mark.parametrize("content", [b"garbage\xff", b"{}", b'{"schema_version": 1}'],
                         ids=["not UTF-8", "empty table", "no trials"])  # fmt: skip
def test_3_a_damaged_manifest_is_rewritten_and_collect_goes_on(sweep_copy, caplog, content):
    """The batch's manifest (trials.json, the old sweep.json) damaged: collect warns and lists
    the trials by folder; the next sweep writes it again."""
    config, out, ids = sweep_copy
    (out / store.MANIFEST).write_bytes(content)
    assert sorted(r["trial_id"] for r in collect(out)) == sorted(ids)
    assert "trials.json" in caplog.text
    report = run_sweep(Sweep.from_toml(TWO_SEEDS), out, engine=InProcess())
    assert report.skipped == ids and [e["id"] for e in store.read_manifest(out)] == ids


# -- 4: a full disk -------------------------------------------------------------------------------
def test_4_a_full_disk_keeps_the_trial_unfinished_and_it_resumes_from_its_checkpoint(
    tmp_path, monkeypatch
):
    """The disk fills up at the trial's third checkpoint: nothing is recorded as a failure (no
    result.json), no temporary file is left, the previous checkpoint is kept, and once there is
    space again the trial resumes from it to the weights of a run that never stopped."""
    spec = _seeds(0, epochs=3)[0]
    real_replace, writes = os.replace, []

    def full_disk(src, dst, *args, **kwargs):
        writes.append(Path(dst).name)
        if Path(dst).name == CHECKPOINT and writes.count(CHECKPOINT) == 3:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(StoreError, match=r"No space left on device: cannot write .*checkpoint\.pt; "
                       r"free space .* run the same command again"):  # fmt: skip
        run_trials([spec], tmp_path / "out")
    monkeypatch.setattr(os, "replace", real_replace)
    folder = tmp_path / "out" / trial_id(spec)
    assert not (folder / RESULT).exists() and _temporary_files(tmp_path) == []
    assert len(store.read_history(folder)) == 2  # the position of the last checkpoint kept

    report = run_trials([spec], tmp_path / "out")  # space again: the same command
    resumed = report.results[trial_id(spec)]
    assert resumed["status"] == "ok" and resumed["resumed_epoch"] == 2
    reference = run_trial(spec, tmp_path / "reference")
    assert resumed["params_sha256"] == reference["params_sha256"]


_SMALL_DISK = """
set -u
cd "$1"; shift
{setup}
run() {{ "$@" -m pyanode.cli sweep sweep.toml --out disk/out --engine inline; }}
({limit} run "$@") > first.out 2> first.err; echo $? > first.code
cp -r disk/out first
{free}
run "$@" > second.out 2> second.err; echo $? > second.code
cp -r disk/out second
"""


def _small_disk() -> tuple[list[str], dict[str, str]]:
    """A command prefix and script parts for a disk that fills up: a 200 KB tmpfs, filled but
    for about 20 KB, in a user namespace where that is allowed; else a file-size limit of 8 KB
    (RLIMIT_FSIZE, SIGXFSZ ignored), which refuses every checkpoint in the same way."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True) if shutil.which(
        "unshare") else None  # fmt: skip
    if probe is not None and probe.returncode == 0:
        return ["unshare", "-rm", "sh", "-c"], {
            "setup": "mkdir disk && mount -t tmpfs -o size=200k tmpfs disk && "
            "head -c 160k /dev/zero > disk/filler",
            "limit": "",
            "free": "rm disk/filler",
        }
    return ["sh", "-c"], {"setup": "mkdir disk", "limit": "trap '' XFSZ; ulimit -f 8;",
                          "free": ""}  # fmt: skip


def test_4_cli_on_a_full_disk_says_so_in_one_line_and_finishes_when_run_again(tmp_path):
    """`pyanode sweep` on a disk too full for a checkpoint: exit 1 with one line (the file and
    how to resume), no trial recorded as failed, no temporary file left, no traceback writing
    results.csv; with space again the same command finishes every trial."""
    (tmp_path / "sweep.toml").write_text(TWO_SEEDS)
    prefix, parts = _small_disk()
    script = _SMALL_DISK.format(**parts)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [*prefix, script, "sh", str(tmp_path), sys.executable]
    subprocess.run(command, cwd=REPO, env=env, timeout=300, check=True)
    assert (tmp_path / "first.code").read_text().strip() == "1"
    line = _last_line((tmp_path / "first.err").read_text())
    assert re.search(r"^pyanode sweep: failed: \[Errno (28|27)\] .*: cannot write .*; free "
                     r"space .* run the same command again", line), line  # fmt: skip
    first = collect(tmp_path / "first")
    assert {r["status"] for r in first} <= {"pending", "interrupted"}  # none failed
    assert _temporary_files(tmp_path / "first") == []

    assert (tmp_path / "second.code").read_text().strip() == "0"
    assert [r["status"] for r in collect(tmp_path / "second")] == ["ok", "ok"]
    assert [r["status"] for r in read_csv(tmp_path / "second" / "results.csv")] == ["ok", "ok"]


# -- 5, 8, 11 and the also-fix list: a user's mistake is one line and exit code 2 -------------
_RUN_CASES = """
import contextlib, io, json, logging, sys
from pyanode.cli import main
outcomes = []
for argv in json.loads(sys.argv[1]):
    logging.getLogger().handlers.clear()  # each case logs to its own stderr
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    outcomes.append([code, err.getvalue()])
print(json.dumps(outcomes))
"""


def _cli_cases(argvs: list[list[str]], prefix: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """(exit code, stderr) of `pyanode argv` for each argv, all in one fresh interpreter (one
    start-up for many cases; each case still goes through `main` and argparse as typed)."""
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", _RUN_CASES, json.dumps([list(map(str, a)) for a in argvs])],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [tuple(case) for case in json.loads(proc.stdout.splitlines()[-1])]


TRAIN = ["train", "--dataset", "concentric-spheres", "--dataset-arg", "n_inner=20",
         "--dataset-arg", "n_outer=40", "--hidden", "8", "--epochs", "1"]  # fmt: skip


def _mistakes(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, the pattern of its one line)."""
    sweep = tmp / "sweep.toml"
    sweep.write_text(TWO_SEEDS)
    (tmp / "latin1.toml").write_bytes("[base]\ndataset = 'caf\xe9'\n".encode("latin-1"))
    (tmp / "a-file").write_text("not a folder")
    (tmp / "a-folder").mkdir()
    bad_radius = tmp / "bad_radius.toml"
    bad_radius.write_text(_config({"dataset_kwargs.r1": [0.5, 2.0]}))
    out = ["--out", tmp / "out"]
    return {
        # 11: tracebacks for user mistakes
        "seed beyond 64 bits": (
            [*TRAIN, "--seed", "18446744073709551616", *out],
            r"train\.seed must be an integer >= 0 and <= 4294967295, got 18446744073709551616",
        ),
        "config a folder": (
            ["train", "--config", tmp, *out],
            r"config '.*' is a folder: give a "
            r"TOML file",
        ),  # fmt: skip
        "config not UTF-8": (
            ["train", "--config", tmp / "latin1.toml", *out],
            r"config '.*latin1\.toml' is not UTF-8 text .*: save it as UTF-8",
        ),
        "sweep config not UTF-8": (
            ["sweep", tmp / "latin1.toml", *out],
            r"config '.*latin1\.toml' is not UTF-8 text",
        ),
        "radii beyond float32": (
            [*TRAIN, "--dataset-arg", "r2=1e299", "--dataset-arg", "r3=1e300", *out],
            r"r2=1e\+299 does not fit the float32 data: use \|r2\| <= 3\.4e\+38",
        ),
        "scheduler that is not there": (
            ["sweep", sweep, *out, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:1"],
            r"no Dask scheduler answers at tcp://127\.0\.0\.1:1 \(.*\): start it|needs the "
            r"optional dependency dask",
        ),
        "scheduler that is not an address": (
            ["sweep", sweep, *out, "--engine", "dask", "--scheduler", "not an address"],
            r"scheduler must be an address like tcp://host:8786, got 'not an address'",
        ),
        # 5: unwritable outputs, found before any work
        "out an existing file": (
            [*TRAIN, "--out", tmp / "a-file"],
            r"output folder '.*a-file' exists and is not a folder",
        ),
        "out a name too long": (
            [*TRAIN, "--out", tmp / ("x" * 300)],
            r"output folder '.*x{300}' cannot be written \(File name too "
            r"long\): choose another path",
        ),  # fmt: skip
        "sweep out a file": (
            ["sweep", sweep, "--out", tmp / "a-file"],
            r"output folder '.*a-file' exists and is not a folder",
        ),
        "sweep csv a folder": (
            ["sweep", sweep, *out, "--csv", tmp / "a-folder"],
            r"output file '.*a-folder' is a folder: name a file",
        ),
        "collect csv a folder": (
            ["collect", tmp, "--csv", tmp / "a-folder"],
            r"output file '.*a-folder' is a folder",
        ),
        # 8: a tiny fixed step, refused before anything is built
        "dt too small for max_steps": (
            [*TRAIN, "--solver", "euler", "--dt", "1e-7", *out],
            r"solver\.dt=1e-07 needs 1e\+07 steps to reach solver\.t1=1\.0, more than "
            r"solver\.max_steps=10000: use dt >= 0\.0001 or raise max_steps",
        ),
        "dt that underflows": (
            [*TRAIN, "--solver", "euler", "--dt", "5e-324", *out],
            r"solver\.dt=5e-324 needs more than 1e308 steps",
        ),
        # also fix
        "seed of 2**32": (
            [*TRAIN, "--seed", "4294967296", *out],
            r"train\.seed must be an integer >= 0 and <= 4294967295",
        ),
        "out empty": ([*TRAIN, "--out", ""], r"argument --out: is empty: name a folder or file"),
        "sweep out empty": (["sweep", sweep, "--out", ""], r"argument --out: is empty"),
        "dataset argument checked up front": (
            ["sweep", bad_radius, *out],
            r"trial dataset_kwargs\.r1=2\.0: radii must satisfy 0 < r1 < r2 < r3, got r1=2\.0",
        ),
        "train dataset argument checked up front": (
            [*TRAIN, "--dataset-arg", "r1=2", *out],
            r"radii must satisfy 0 < r1 < r2 < r3, got r1=2\.0",
        ),
    }


def test_5_8_11_every_user_mistake_is_one_line_naming_the_fix_with_exit_code_2(tmp_path):
    """Through the CLI in a fresh interpreter: each mistake of the issue is refused before any
    work (nothing trained, no output folder made) with exit code 2 and one line that names the
    field or file and the fix, never a traceback and never after training."""
    cases = _mistakes(tmp_path)
    outcomes = _cli_cases([argv for argv, _ in cases.values()])
    for (name, (argv, pattern)), (code, stderr) in zip(cases.items(), outcomes, strict=True):
        assert code == 2, (name, code, stderr)
        line = _one_line_error(stderr)
        assert line.startswith(f"pyanode {argv[0]}: error: "), (name, line)
        assert re.search(pattern, line), (name, line)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.rglob(RESULT)) == [] and list(tmp_path.rglob(CHECKPOINT)) == []


def test_5_a_read_only_output_is_refused_before_any_work(tmp_path):
    """`--out` on a read-only file system (a read-only tmpfs in a user namespace, or a folder
    without write permission for a user other than root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        prefix: tuple[str, ...] = ()
    elif shutil.which("unshare") and subprocess.run(["unshare", "-rm", "true"]).returncode == 0:
        script = f'mount -t tmpfs -o ro tmpfs {folder} && exec "$0" "$@"'
        prefix = ("unshare", "-rm", "sh", "-c", script)
    else:
        pytest.skip("root without user namespaces: no read-only place to write to")
    outcomes = _cli_cases([[*TRAIN, "--out", folder / "run"],
                           ["sweep", tmp_path / "none.toml", "--out", folder / "run"]],
                          prefix)  # fmt: skip
    code, stderr = outcomes[0]
    assert code == 2, stderr
    assert re.search(r"pyanode train: error: output folder '.*read-only/run' cannot be written "
                     r"\((Read-only file system|Permission denied)\): choose another path",
                     _one_line_error(stderr))  # fmt: skip
    folder.chmod(0o755)


# -- 7, 12: the sweep's own process is killed or interrupted --------------------------------------
def _process_state(pid: int) -> str | None:
    """The state letter of process `pid` (R, S, Z, ...), None if it is gone (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    return _process_state(pid) not in (None, "Z", "X")  # a zombie has ended


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the live children of `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and _alive(int(entry.name)):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
    return {p: c.decode(errors="replace") for p, c in found.items()}


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)


def _start_sweep(tmp_path: Path, epochs: int) -> tuple[subprocess.Popen, Path, Path]:
    """A local-pool sweep of two trials in its own session, once both workers train."""
    config, out = tmp_path / "sweep.toml", tmp_path / "out"
    config.write_text(_config({"train.seed": [0, 1]}, epochs=epochs))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyanode.cli", "sweep", config, "--out", out, "--workers", "2"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _wait(lambda: len(list(out.glob(f"*/{CHECKPOINT}"))) == 2, 240, "both trials to train")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, config, out


def _pool_processes(pid: int) -> tuple[list[int], list[int]]:
    """(workers, resource tracker) among the children of the sweep `pid`."""
    children = _children(pid)
    workers = [p for p, c in children.items() if "multiprocessing.spawn" in c]
    tracker = [p for p, c in children.items() if "resource_tracker" in c]
    return workers, tracker


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_7_pool_workers_and_the_resource_tracker_exit_when_the_sweep_is_killed(tmp_path, how):
    """Killing the sweep's process leaves no pool worker and no resource tracker running (they
    were still alive 120 s later); SIGTERM ends it as Ctrl-C does, exit code 143."""
    proc, _, out = _start_sweep(tmp_path, epochs=400)
    workers, tracker = _pool_processes(proc.pid)
    try:
        assert len(workers) == 2 and len(tracker) == 1, _children(proc.pid)
        os.kill(proc.pid, how)
        proc.communicate(timeout=60)
        _wait(lambda: not any(map(_alive, workers + tracker)), 30, "the workers to exit")
    finally:
        for pid in workers + tracker:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if how == signal.SIGTERM:
        assert proc.returncode == 143
    assert {r["status"] for r in collect(out)} <= {"interrupted", "pending"}  # resumable


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_12_a_second_ctrl_c_ends_a_pool_sweep_promptly_and_it_resumes(tmp_path):
    """Ctrl-C twice (SIGINT to the whole process group, as a terminal sends it): the sweep ends
    within seconds with exit code 130, no worker is left, and the same command then finishes
    every trial from their checkpoints."""
    proc, config, out = _start_sweep(tmp_path, epochs=30)
    workers, tracker = _pool_processes(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        _wait(lambda: not any(map(_alive, workers + tracker)), 30, "the workers to exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert _last_line(stderr).startswith("pyanode sweep: interrupted")
    assert main(["sweep", str(config), "--out", str(out), "--engine", "inline"]) == 0
    results = [read_result(out / i) for i in (r["trial_id"] for r in collect(out))]
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert any(r["resumed_epoch"] for r in results)  # not started afresh
    assert _temporary_files(out) == []


# -- 9: what is not a trial -----------------------------------------------------------------------
def test_9_an_unrelated_folder_with_a_spec_toml_is_not_a_trial(sweep_copy, capsys):
    """A folder of the user's under --out holding a spec.toml of their own does not turn a
    successful sweep into exit code 2 after training: it is not a trial (no trial.json)."""
    config, out, ids = sweep_copy
    (out / "notes").mkdir()
    (out / "notes" / SPEC).write_text('title = "my notes"\n')
    assert main(["sweep", str(config), "--out", str(out), "--engine", "inline"]) == 0
    assert "2 trial(s): 2 ok" in capsys.readouterr().out
    assert [r["trial_id"] for r in read_csv(out / "results.csv")] == ids
    assert (out / "notes" / SPEC).read_text() == 'title = "my notes"\n'
    with pytest.raises(FolderError, match=r"holds another run \(a spec\.toml of another run"):
        run_trial(TINY, out / "notes")  # and nobody writes a trial over it


# -- also fix -------------------------------------------------------------------------------------
def test_temporary_files_left_by_a_kill_are_removed(sweep_copy):
    config, out, ids = sweep_copy
    left = [out / ".trials.json.k2x9a0zq.tmp", out / ids[0] / ".checkpoint.pt.a1b2c3d4.tmp",
            out / ids[1] / ".result.json.zz_9y8x7.tmp"]  # fmt: skip
    for path in left:
        path.write_bytes(b"half a file")
    keep = out / ids[0] / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    run_sweep(Sweep.from_toml(TWO_SEEDS), out, engine=InProcess())
    assert not any(p.exists() for p in left) and keep.exists()


def test_the_same_run_written_two_ways_is_one_trial(tmp_path, capsys):
    """`lr = 1` and `lr = 1.0` (and a dataset's float argument given as an integer) are the
    same spec, the same trial id, one training; --dry-run lists what the run will run: each
    trial once, with its state."""
    assert trial_id(TINY.replace(train=TINY.train.replace(lr=1))) == trial_id(
        TINY.replace(train=TINY.train.replace(lr=1.0)))  # fmt: skip
    spheres = RunSpec(dataset="concentric-spheres", dataset_kwargs={"r1": 0.5, "r3": 2})
    assert trial_id(spheres) == trial_id(spheres.replace(dataset_kwargs={"r1": 0.5, "r3": 2.0}))
    config = tmp_path / "sweep.toml"
    config.write_text(_config({"train.lr": [1, 1.0, 0.5]}))
    argv = ["sweep", str(config), "--out", str(tmp_path / "out")]
    assert main([*argv, "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 3 and listed[-1].startswith("2 trial(s) (1 grid point(s) repeat")
    assert all(" pending " in line for line in listed[:2])
    assert main([*argv, "--engine", "inline"]) in (0, 1)
    capsys.readouterr()
    assert main([*argv, "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert all(re.search(r" (ok|failed) ", line) for line in listed[:2])


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    """Two sweeps on the same --out: the second exits 2 at once instead of training every trial
    a second time; the lock goes with the process holding it."""
    config, out = tmp_path / "sweep.toml", tmp_path / "out"
    config.write_text(TWO_SEEDS)
    with store.lock(out):  # as a first sweep holds it
        outcomes = _cli_cases([["sweep", config, "--out", out, "--engine", "inline"],
                               [*TRAIN, "--out", out]])  # fmt: skip
    for code, stderr in outcomes:
        assert code == 2
        assert re.search(rf"'{re.escape(str(out))}' is in use by another pyanode run \(pid "
                         rf"{os.getpid()} on .*\): wait for it to finish, or write to another "
                         r"folder", _one_line_error(stderr))  # fmt: skip
    assert list(out.glob(f"*/{RESULT}")) == []
    assert run_sweep(Sweep.from_toml(TWO_SEEDS), out, engine=InProcess()).failed == []


def test_on_failure_raise_on_the_pool_starts_no_trial_after_the_first_failure(tmp_path):
    """8 trials on a pool of 2, the first one failing at its second batch: at most the trial
    running beside it (60 batches) finishes, no other starts (it ran 5 of 8 before)."""
    bad = TINY.replace(train=TINY.train.replace(lr=1e6, epochs=2))
    specs = [bad, *_seeds(1, 2, 3, 4, 5, 6, 7, epochs=20)]
    with pytest.raises(TrialFailed, match=rf"trial {trial_id(bad)} failed"):
        run_trials(specs, tmp_path, engine=LocalPool(workers=2),
                   options=RunOptions(on_failure="raise"))  # fmt: skip
    assert len(list(tmp_path.glob(f"*/{RESULT}"))) <= 2


def test_resuming_with_another_thread_count_is_refused(tmp_path, capsys):
    """A checkpoint written with 1 torch thread resumes bit-identically only with 1: resuming
    it with 2 is a one-line error naming both counts and the fix, before any work."""
    config, out = tmp_path / "sweep.toml", tmp_path / "out"
    config.write_text(TWO_SEEDS)
    report = run_sweep(Sweep.from_toml(TWO_SEEDS), out, engine=InProcess(threads=1))
    (out / report.ids[0] / RESULT).unlink()  # as if killed after its last checkpoint
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(config), "--out", str(out), "--engine", "inline", "--threads", "2"])
    assert exit_info.value.code == 2
    line = _one_line_error(capsys.readouterr().err)
    assert re.search(r"was checkpointed with 1 torch thread\(s\) and would resume with 2: .*"
                     r"run it with --threads 1", line), line  # fmt: skip
    assert not (out / report.ids[0] / RESULT).exists()
    assert main(["sweep", str(config), "--out", str(out), "--engine", "inline"]) == 0
