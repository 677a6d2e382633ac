"""`pyanode report`: the numbers in the documentation, generated. Marked regions of the Markdown
files are rewritten from the committed results under `docs/data/` and checked against them; the
commands that produce those results are run again on request.

A region is everything between two markers on their own lines:

    <!-- report:table1 -->
    ... generated: do not edit by hand ...
    <!-- /report:table1 -->

Its text is `REGIONS[name](data)` (`pyanode.experiments.report_tables`): a pure function of the
committed files, which ends with the command, settings, machine, library versions, commit and
date that produced them. `rewrite` puts the generated text in place, `check` lists the regions
whose text differs (the docs freshness test runs it), and `pyanode report --rerun` first runs
the commands again (`run_jobs`).

The runs: each `Job` is one command at its documented settings (`pyanode reproduce table1
--epochs 50 --seeds 3`, `pyanode study gradient`, `python -m benchmarks.run`, ...). `run_jobs`
runs them one after another into a results folder (`results/docs/<git commit>/<job>/`,
gitignored), each in a fresh process with one torch thread, and copies the small files the docs
are rendered from (a reproduction's `summary.json` and `config.json`, a study's CSV and
`study.json`, ...) into the committed `docs/data/<job>/`, with `provenance.json`: the command, its
settings, the machine (CPU model, cores, threads, load), the library versions, the git commit,
the date, the wall time and the training time of its trials.

Running again is cheap and safe: a job whose run finished in the results folder is not run
again (its files are copied again), and a job that was interrupted is run again by the same
command, whose runner skips the finished trials and resumes the interrupted one.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pyanode._errors import SpecError
from pyanode.experiments import store
from pyanode.specs import setting

# -- the runs behind the docs ---------------------------------------------------------------------
DATA = Path("docs", "data")  # the committed results, relative to the repository root
PROVENANCE = "provenance.json"
DONE = "job.json"  # in a job's results folder: written when its command succeeded


@dataclasses.dataclass(frozen=True)
class Job:
    """One documented command.

    Arguments:
        name: its folder under `docs/data/` and under the results folder.
        words: the command line after the program, `{out}` standing for its output folder.
        keep: the files of the output folder committed under `docs/data/<name>/`.
        estimate: seconds it took on the 2-core development machine (shown before a run when
            no earlier provenance says better).
        module: the module run by `python -m` (`pyanode.cli`, or a benchmark script), or a
            script's path (`scripts/fidelity/slice_gap.py`), run by `python PATH`.
        stdout: also keep the command's standard output as this file (for scripts that print
            their table and store nothing).
        pin: run it on one CPU core (the last), as the speed benchmarks ask.
        then: further command lines of the same program, run in order after the first (a
            study whose summary several commands fill in); the job fails at the first that
            fails.
    """

    name: str
    words: tuple[str, ...]
    keep: tuple[str, ...]
    estimate: float
    module: str = "pyanode.cli"
    stdout: str | None = None
    pin: bool = False
    then: tuple[tuple[str, ...], ...] = ()

    def command(self, out: Path) -> list[str]:
        """The argument list after `python -m <module>`."""
        return [word.replace("{out}", str(out)) for word in self.words]

    def commands(self, out: Path) -> list[list[str]]:
        """Every command line, as `python` arguments: `-m module ...` or `script ...`."""
        program = [self.module] if self.script else ["-m", self.module]
        return [program + [w.replace("{out}", str(out)) for w in words]
                for words in (self.words, *self.then)]  # fmt: skip

    @property
    def script(self) -> bool:
        return self.module.endswith(".py")

    def shown(self, out: Path | None = None) -> str:
        """The command as a user types it; without `out`, as the docs show it: a
        reproduction's `--out` left at its default, a study's written `results/studies/...`,
        a benchmark's JSON in benchmarks/results."""
        if self.module == "pyanode.cli":
            program = "pyanode"
        else:
            program = f"python {self.module}" if self.script else f"python -m {self.module}"
        lines = []
        for line in self.commands(out or Path(self.documented_out)):
            words = line[1:] if self.script else line[2:]
            if out is None and words[:1] == ["reproduce"]:
                at = words.index("--out")
                words = words[:at] + words[at + 2 :]
            lines.append(" ".join([program, *words]))
        return "; ".join(lines)

    @property
    def documented_out(self) -> str:
        if self.words[:1] == ("study",):
            return f"results/studies/{self.words[1]}"
        return "results/benchmarks" if self.module.startswith("benchmarks.") else "results"


def _reproduction(name: str, options: str = "", suffix: str = "", *, estimate: float) -> Job:
    words = ("reproduce", name, *options.split(), "--out", "{out}")
    return Job(name + suffix, words, ("summary.json", "config.json"), estimate)


def _study(name: str, *tables: str, estimate: float) -> Job:
    words = ("study", name, "--out", "{out}", "--no-figures")
    return Job(f"study-{name}", words, (*tables, "study.json"), estimate)


def _fidelity(study: str, *commands: str, estimate: float) -> Job:
    """A study of docs/fidelity.md: `python scripts/fidelity/<study>.py` with each of
    `commands`' options in turn; it writes its summary into docs/data/fidelity-<study>/ itself
    (and keeps its raw trials under results/fidelity/, where a rerun resumes)."""
    lines = [tuple(c.split()) for c in commands or ("",)]
    script = f"scripts/fidelity/{study.replace('-', '_')}.py"
    return Job(f"fidelity-{study}", lines[0], (), estimate, module=script, then=tuple(lines[1:]))


# Every command whose results the docs show, in the order they are run. Estimates: seconds on
# the shared 2-core machine the docs were written on (replaced by the last provenance's).
# fmt: off
JOBS: tuple[Job, ...] = (
    _reproduction("table1", "--seeds 3", "-paper", estimate=60),
    _reproduction("table1", "--epochs 50 --seeds 3", estimate=300),
    _reproduction("dupont-1d", estimate=150),
    _reproduction("dupont-flows", estimate=60),
    _reproduction("dupont-features", estimate=30),
    _reproduction("dupont-nfe", estimate=60),
    _reproduction("dupont-nfe", "--epochs 50 --seeds 5", "-50", estimate=250),
    _reproduction("dupont-generalisation", estimate=100),
    _reproduction("dupont-generalisation", "--epochs 50 --map-epochs 50 --seeds 20", "-50",
                  estimate=600),
    _reproduction("dupont-images", estimate=150),
    _study("forward", "forward.csv", "orders.csv", estimate=120),
    _study("gradient", "gradient.csv", estimate=120),
    _study("cross-solver", "cross_solver.csv", estimate=200),
    _study("batch-coupling", "batch_coupling.csv", estimate=200),
    Job("benchmarks", ("--json", "{out}/cpu.json"), ("cpu.json",), 600,
        module="benchmarks.run", pin=True),
    Job("benchmarks-memory", (), (), 900, module="benchmarks.memory", stdout="memory.md",
        pin=True),
    Job("controller-study", ("--out", "{out}"), ("controller_study.json",), 900,
        module="benchmarks.controller_study", pin=True),
    Job("benchmarks-scaling",
        ("--json", "{out}/scaling.json", "--figure", "benchmarks/work_precision.png"),
        ("scaling.json",), 1200, module="benchmarks.scaling", pin=True),
    Job("benchmarks-profile", ("--json", "{out}/profile.json"), ("profile.json",), 120,
        module="benchmarks.profile", pin=True),
    # docs/fidelity.md (issue 17): hours of one core each, the full studies
    _fidelity("depth-variant", estimate=3400),
    _fidelity("slice-gap", estimate=1900),
    _fidelity("images-mnist", "--pairs same-k,linear --epochs 7",
              "--pairs matched,linear --epochs 4", estimate=4500),
    _fidelity("table1-epoch", "timing", "fit",
              "candidates --seeds 3", "candidates --n-points 98304 --batch-size 96 --seeds 3",
              "candidates --n-points 1024 --batch-size 1 --seeds 3", estimate=6000),
    Job("fidelity-mnist-full-size", ("--out", "{out}/mnist_full_size.json"),
        ("mnist_full_size.json",), 750, module="benchmarks.mnist_full_size", pin=True),
)
# fmt: on
JOB_NAMES = tuple(job.name for job in JOBS)


def jobs_named(names: Sequence[str]) -> list[Job]:
    """The jobs called `names` (all of them for none), in the order of `JOBS`.

    Raises:
        SpecError: for an unknown name, listing the known ones.
    """
    unknown = [n for n in names if n not in JOB_NAMES]
    if unknown:
        raise SpecError(f"jobs={','.join(unknown)!r} are not known; accepted: "
                        f"{', '.join(JOB_NAMES)}")  # fmt: skip
    return [job for job in JOBS if not names or job.name in names]


# -- where and with what ----------------------------------------------------------------------
CODE = ("pyanode", "benchmarks", "scripts")  # what produces the results


def git_commit(root: Path) -> tuple[str | None, bool]:
    """The commit checked out in `root` and whether the code that produces results (`CODE`)
    differs from it (None, False outside git)."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()  # fmt: skip
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", *CODE],
                                check=True, capture_output=True, text=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return commit, bool(status.strip())


def default_results(root: Path) -> Path:
    """`results/docs/<short commit>[-dirty]`: a run at another commit starts afresh, an
    interrupted one at this commit continues."""
    commit, dirty = git_commit(root)
    tag = (commit or "nogit")[:10] + ("-dirty" if dirty else "")
    return Path("results", "docs", tag)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int) -> dict[str, Any]:
    """The machine and libraries a run used."""
    import numpy
    import torch

    import pyanode

    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pyanode": pyanode.__version__,
        "blas": _blas(torch),
    }


def _blas(torch: Any) -> str:
    config = torch.__config__.show()
    for name in ("MKL", "OpenBLAS", "BLIS", "Accelerate"):
        if f"BLAS_INFO={name.lower()}" in config.replace(" ", "").lower() or (
            f"use_{name.lower()}" in config.lower()
        ):
            return name
    return "unknown"


# -- running ----------------------------------------------------------------------------------
@dataclasses.dataclass
class JobOutcome:
    """What `run_job` did: `ran` (the command ran), `kept` (files copied), `error`."""

    job: Job
    ran: bool
    seconds: float
    error: str | None = None


def plan(jobs: Sequence[Job], root: Path, results: Path) -> list[tuple[Job, str, float]]:
    """Per job: what will happen (`run`, `resume` or `done`) and its estimated seconds."""
    out = []
    for job in jobs:
        folder = root / results / job.name
        if (folder / DONE).exists():
            out.append((job, "done", 0.0))
        else:
            state = "resume" if folder.exists() else "run"
            out.append((job, state, estimate(job, root)))
    return out


def estimate(job: Job, root: Path) -> float:
    """The wall time of the job's last stored run (its provenance), else its estimate."""
    path = root / DATA / job.name / PROVENANCE
    if path.exists():
        return float(store.read_json(path).get("wall_seconds") or job.estimate)
    return job.estimate


def run_job(
    job: Job,
    root: Path,
    results: Path,
    *,
    python: str = sys.executable,
    log: Callable[[str], None] = print,
) -> JobOutcome:
    """Run `job` into `root/results/<name>/` unless it finished there before, then copy its
    files and provenance into `root/docs/data/<name>/`.

    The command runs in a fresh process with one torch thread (OMP/MKL too), `root` first on
    its import path; its standard output is echoed and kept (`stdout.txt`, and `job.stdout`),
    its standard error (progress, warnings) goes to this process's.
    """
    folder = root / results / job.name
    done = folder / DONE
    if done.exists():
        return _keep(job, root, folder, store.read_json(done), log, ran=False)
    fresh = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    log(f"$ {job.shown(results / job.name)}")
    commit, dirty = git_commit(root)  # the code the run starts with (edits may follow)
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    code = 0
    with open(folder / "stdout.txt", "w", encoding="utf-8") as sink, _LoadSampler() as load:
        for command in job.commands(results / job.name):
            # standard output echoed and kept; standard error (progress, warnings) passes through
            pin = _pin_to_last_core if job.pin else None
            process = subprocess.Popen([python, *command], cwd=root, env=env, text=True,
                                       stdout=subprocess.PIPE, preexec_fn=pin)  # fmt: skip
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                sink.write(line)
            code = process.wait()
            if code != 0:
                break
    seconds = time.perf_counter() - start
    if code != 0:
        return JobOutcome(job, True, seconds, f"exit code {code} (see its output above)")
    record = {
        "command": job.shown(results / job.name),
        "module": job.module,
        "date": started.isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "wall_seconds": round(seconds, 1),
        "fresh": fresh,  # False: resumed or partly skipped, wall_seconds covers the last part
        "load_average": load.mean(),
        "machine": {**machine(threads=1), "pinned_to_one_core": job.pin},
    }
    if job.stdout:
        shutil.copyfile(folder / "stdout.txt", folder / job.stdout)
    store.write_json(done, record)
    return _keep(job, root, folder, record, log, ran=True, seconds=seconds)


class _LoadSampler:
    """The 1-minute load average, sampled every `every` seconds while the context is open."""

    def __init__(self, every: float = 5.0):
        self.every, self.samples = every, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> _LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def mean(self) -> float:
        return round(sum(self.samples) / len(self.samples), 2)


def _pin_to_last_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def _keep(
    job: Job,
    root: Path,
    folder: Path,
    record: dict[str, Any],
    log: Callable[[str], None],
    *,
    ran: bool,
    seconds: float = 0.0,
) -> JobOutcome:
    """Copy the job's files and its provenance into docs/data/<name>/."""
    target = root / DATA / job.name
    target.mkdir(parents=True, exist_ok=True)
    names = [*job.keep, *([job.stdout] if job.stdout else [])]
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        return JobOutcome(job, ran, seconds, f"{folder} lacks {', '.join(missing)}")
    for name in names:
        store.atomic_write(target / name, lambda f, n=name: f.write((folder / n).read_bytes()))
    provenance = {
        **record,
        "documented_command": job.shown(),
        **_settings(job, folder),
        **_trials(folder),
    }
    store.write_json(target / PROVENANCE, provenance)
    log(f"{job.name}: {', '.join(names)} and {PROVENANCE} -> {target}")
    return JobOutcome(job, ran, seconds)


def _settings(job: Job, folder: Path) -> dict[str, Any]:
    """The settings of the run: a reproduction's config.json, a study's config."""
    for name, key in (("config.json", "config"), ("study.json", "config")):
        path = folder / name
        if path.exists():
            return {"settings": store.read_json(path)[key]}
    # the benchmarks store their arguments
    for name in ("cpu.json", "scaling.json", "profile.json"):
        if (folder / name).exists():
            return {"settings": store.read_json(folder / name)["args"]}
    return {"settings": {"argv": job.command(Path("OUT"))}}


def _trials(folder: Path) -> dict[str, Any]:
    """The number of trials stored and their summed training time (`seconds_total`)."""
    if not (folder / store.MANIFEST).exists():
        return {}
    trials = store.read_batch(folder)
    return {
        "trials": len(trials),
        "training_seconds": round(sum(t.result.get("seconds_total") or 0 for t in trials), 1),
    }


def run_jobs(
    jobs: Sequence[Job], root: Path, results: Path, *, log: Callable[[str], None] = print
) -> list[JobOutcome]:
    """Run `jobs` one after another (see `run_job`); a failed job is reported, the others go
    on."""
    outcomes = []
    for k, job in enumerate(jobs, 1):
        log(f"== [{k}/{len(jobs)}] {job.name}")
        outcome = run_job(job, root, results, log=log)
        if outcome.error:
            log(f"{job.name}: FAILED: {outcome.error}")
        outcomes.append(outcome)
    return outcomes


# -- the marked regions of the docs ---------------------------------------------------------------
# the Markdown files whose numbers are generated, relative to the repository root
DOCUMENTS = ("README.md", "docs/*.md", "benchmarks/README.md")
MARKER = re.compile(r"^<!-- (/?)report:([a-z0-9-]+) -->$")


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    """What `pyanode report` does: by default rewrite the marked regions of the docs from the
    committed results under docs/data."""

    check: bool = setting(
        False,
        "only compare the docs with the committed results: exit 1 "
        "and show the difference if a region is stale",
        exclusive="mode",
    )
    rerun: bool = setting(
        False,
        "first run the documented commands again (finished runs in "
        "--results are kept), refresh docs/data, then rewrite the docs",
        exclusive="mode",
    )
    dry_run: bool = setting(
        False, "print what --rerun would run and how long it should take", exclusive="mode"
    )
    jobs: tuple[str, ...] = setting(
        (), "which runs, by name (--rerun, --dry-run): " + ", ".join(JOB_NAMES), shown="all"
    )
    results: Path | None = setting(
        None,
        "folder of the runs' full results (gitignored)",
        type=Path,
        shown="results/docs/<git commit>",
    )
    root: Path = setting(Path("."), "the repository", type=Path)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Region:
    """One marked region of a document: its name, the lines of its text, and where it is."""

    path: Path
    name: str
    start: int  # index of the opening marker's line
    end: int  # index of the closing marker's line
    text: str  # the lines between the markers, joined, without the final newline


def documents(root: Path) -> list[Path]:
    """The Markdown files under `root` whose regions are generated."""
    out: list[Path] = []
    for pattern in DOCUMENTS:
        out += sorted(root.glob(pattern))
    return out


def regions(
    path: Path, lines: Sequence[str] | None = None, root: Path | None = None
) -> Iterator[Region]:
    """The marked regions of the file `path` (of `lines`, when given), in order.

    Raises:
        SpecError: for a marker without its partner, nested markers, an unknown name, or (with
            the repository `root`) a region in another document than its own.
    """
    from pyanode.experiments.report_tables import REGIONS

    lines = path.read_text(encoding="utf-8").splitlines() if lines is None else lines
    open_at: tuple[int, str] | None = None
    for i, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if not match:
            continue
        closing, name = match[1] == "/", match[2]
        where = f"{path}:{i + 1}"
        if name not in REGIONS:
            raise SpecError(f"{where}: region {name!r} is not known; known: "
                            f"{', '.join(sorted(REGIONS))}")  # fmt: skip
        if root is not None and path != root / REGIONS[name].document:
            raise SpecError(f"{where}: region {name!r} belongs in {REGIONS[name].document}")
        if not closing and open_at is not None:
            raise SpecError(f"{where}: region {name!r} opens inside region {open_at[1]!r}")
        if closing and (open_at is None or open_at[1] != name):
            raise SpecError(f"{where}: region {name!r} closes without being opened")
        if closing:
            assert open_at is not None
            yield Region(path, name, open_at[0], i, "\n".join(lines[open_at[0] + 1 : i]))
            open_at = None
        else:
            open_at = (i, name)
    if open_at is not None:
        raise SpecError(f"{path}:{open_at[0] + 1}: region {open_at[1]!r} is never closed")


def render(name: str, root: Path) -> str:
    """The generated text of the region `name` from the results committed under `root`."""
    from pyanode.experiments.report_tables import REGIONS, Data

    spec = REGIONS[name]
    return spec.render(Data(root, spec.document)).strip("\n")


@dataclasses.dataclass(frozen=True)
class Stale:
    """A region whose text differs from what its results give."""

    region: Region
    expected: str

    def diff(self) -> str:
        return "\n".join(
            difflib.unified_diff(
                self.region.text.splitlines(),
                self.expected.splitlines(),
                f"{self.region.path} ({self.region.name}, in the file)",
                f"generated from {DATA}",
                lineterm="",
            )
        )


def check(root: Path) -> list[Stale]:
    """Every region of the documents under `root` whose text is not what the committed results
    give (empty: the docs are up to date).

    Raises:
        SpecError: for broken markers, or a region that no document uses.
    """
    stale, used = [], set()
    cache: dict[str, str] = {}
    for path in documents(root):
        for region in regions(path, root=root):
            used.add(region.name)
            if region.name not in cache:
                cache[region.name] = render(region.name, root)
            if region.text != cache[region.name]:
                stale.append(Stale(region, cache[region.name]))
    _check_all_used(used)
    return stale


def _check_all_used(used: set[str]) -> None:
    from pyanode.experiments.report_tables import REGIONS

    unused = sorted(set(REGIONS) - used)
    if unused:
        raise SpecError(f"regions {', '.join(unused)} are generated but no document shows them")


def rewrite(root: Path) -> list[Path]:
    """Rewrite every region of the documents under `root` from the committed results.

    Returns:
        The files that changed.
    """
    changed = []
    cache: dict[str, str] = {}
    for path in documents(root):
        lines = path.read_text(encoding="utf-8").splitlines()
        new = list(lines)
        for region in reversed(list(regions(path, lines, root))):
            if region.name not in cache:
                cache[region.name] = render(region.name, root)
            body = cache[region.name].split("\n") if cache[region.name] else []
            new[region.start + 1 : region.end] = body
        if new != lines:
            store.atomic_write_text(path, "\n".join(new) + "\n")
            changed.append(path)
    return changed
