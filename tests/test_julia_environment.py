"""pyanode.julia._environment (and _load): detecting Julia without Julia: no executable, fake ones
that are too old, broken or hanging; installing with a failing or hanging one.

Every test runs with a PATH holding only a temporary folder (where a fake `julia` script may be
written), HOME in a temporary folder and juliapkg's project in a temporary folder, so that the
real environment is never read or written.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pyanode._errors import DataError, JuliaUnavailable, SpecError
from pyanode.julia import _environment, available, install, julia_package_dir, load, status

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fake julia scripts need a POSIX sh")

JULIA_VARIABLES = (
    "PYANODE_JULIA",
    "PYANODE_DISABLE_JULIA",
    "PYANODE_JULIA_PROBE_TIMEOUT",
    "PYTHON_JULIACALL_EXE",
    "PYTHON_JULIACALL_PROJECT",
    "PYTHON_JULIAPKG_EXE",
    "PYTHON_JULIAPKG_OFFLINE",
)
GOOD_VERSION = """case "$*" in
  *--version*) echo "julia version 1.11.2" ;;
  *) echo "fake julia: cannot run $*" >&2; exit 3 ;;
esac
"""


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """A clean environment without Julia; returns the folder that is the whole PATH."""
    for name in JULIA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path / "julia_env"))
    return folder


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to download (juliapkg fetches Julia with urlopen)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def no_process(monkeypatch):
    """Fail the test if anything starts a process (a Julia, an installer)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def fake_julia(folder: Path, body: str) -> Path:
    path = folder / "julia"
    path.write_text("#!/bin/sh\nPATH=/usr/bin:/bin\n" + body)
    path.chmod(0o755)
    return path


def still_running(pid: int, wait: float = 5.0) -> bool:
    """Whether process `pid` is alive (not gone, not a zombie) after up to `wait` seconds."""
    deadline = time.perf_counter() + wait
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        stat = Path(f"/proc/{pid}/stat")
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False  # killed, waiting for a parent that may never reap it
        except (OSError, IndexError):
            pass
        if time.perf_counter() > deadline:
            return True
        time.sleep(0.05)


def juliacall_was_imported() -> bool:
    return "juliacall" in sys.modules


def test_no_julia_status_is_fast_and_says_why(bin_dir, no_process):
    before = juliacall_was_imported()
    state = status()  # fast: no process started, nothing imported
    assert not state.available and not state.installed and not state.usable
    assert state.reason.startswith("no Julia executable found")
    assert "PYANODE_JULIA=/path/to/julia" in state.reason
    assert state.executable is None
    assert not available()
    assert juliacall_was_imported() == before


def block_torch(folder: Path) -> dict[str, str]:
    """Environment for a child Python in which `import torch` fails (a sitecustomize that puts
    None in sys.modules['torch']), with this checkout first on the path."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    root = Path(__file__).resolve().parent.parent
    path = os.pathsep.join(filter(None, [str(folder), str(root), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def test_pyanode_julia_status_never_imports_torch(bin_dir, tmp_path):
    """`pyanode julia status` (the command, its lazy CLI dispatch and the bridge) works with
    torch unimportable, never imports juliacall without Julia, and says why Julia is not usable,
    fast."""
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from pyanode.cli import main\n"
        "code = main(['julia', 'status'])\n"
        "print('elapsed', time.perf_counter() - t, 'juliacall', 'juliacall' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=block_torch(tmp_path / "shim"),
    )
    assert done.returncode == 1, done.stderr
    first, last = done.stdout.splitlines()
    assert first.startswith("julia backend: not usable: no Julia executable found")
    assert last.endswith("juliacall False")
    assert float(last.split()[1]) < 5.0


def test_backend_julia_without_julia_is_one_line_with_the_fix(bin_dir, tmp_path):
    """Issue 15, defect 10: `pyanode train --backend julia` without Julia ends with one line
    saying what to do, and exit status 2, not a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "pyanode.cli", "train", "--backend", "julia", "--epochs", "1"]
        + ["--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)),
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pyanode train: error: the Julia backend is not available: ")
    assert "install Julia >= 1.10" in lines[0] and "PYANODE_JULIA=/path/to/julia" in lines[0]


def test_too_old_julia_is_refused_without_download(bin_dir, no_network):
    fake_julia(bin_dir, 'echo "julia version 1.6.7"\n')
    state = status()
    assert not state.available
    assert state.version == "1.6.7"
    assert "Julia 1.6.7 at" in state.reason
    assert "is too old: PyANODE needs Julia >= 1.10" in state.reason
    before = juliacall_was_imported()
    with pytest.raises(JuliaUnavailable, match=r"not available: Julia 1\.6\.7 at .* is too old"):
        load()
    assert juliacall_was_imported() == before


def test_broken_julia_says_how(bin_dir, no_network):
    fake_julia(
        bin_dir, 'echo "error while loading shared libraries: libjulia.so.1" >&2\nexit 127\n'
    )
    state = status()
    assert not state.available
    assert "is broken: `julia --version` exited with status 127" in state.reason
    assert "libjulia.so.1" in state.reason
    with pytest.raises(JuliaUnavailable, match="exited with status 127"):
        load()


def test_hanging_julia_times_out_and_is_killed(bin_dir, tmp_path):
    pid_file = tmp_path / "sleeper.pid"
    fake_julia(bin_dir, f'sleep 30 &\necho $! > "{pid_file}"\nwait\n')
    start = time.perf_counter()
    state = status(timeout=0.5)
    assert time.perf_counter() - start < 20.0  # the fake Julia would answer after 30 s
    assert not state.available
    assert "did not answer `julia --version` within 0.5 s" in state.reason
    assert not still_running(int(pid_file.read_text())), "the hanging julia's child was left"


def test_probe_timeout_from_environment(bin_dir, monkeypatch):
    monkeypatch.setenv("PYANODE_JULIA_PROBE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="PYANODE_JULIA_PROBE_TIMEOUT must be a finite number > 0"):
        status()
    monkeypatch.setenv("PYANODE_JULIA_PROBE_TIMEOUT", "-2")
    with pytest.raises(ValueError, match=r"> 0, got -2\.0"):
        status()
    monkeypatch.setenv("PYANODE_JULIA_PROBE_TIMEOUT", "0.3")
    fake_julia(bin_dir, "sleep 30\n")
    assert "within 0.3 s" in status().reason


def test_something_else_called_julia(bin_dir):
    fake_julia(bin_dir, 'echo "hello"\n')
    assert "is not Julia: `--version` printed 'hello'" in status().reason


def test_an_explicit_julia_is_not_replaced_silently(bin_dir, monkeypatch, tmp_path):
    fake_julia(bin_dir, GOOD_VERSION)
    monkeypatch.setenv("PYANODE_JULIA", str(tmp_path / "nowhere" / "julia"))
    state = status()
    assert not state.available
    assert "nowhere/julia (from PYANODE_JULIA) does not exist" in state.reason


def test_working_julia_without_the_environment(bin_dir, no_network):
    path = fake_julia(bin_dir, GOOD_VERSION)
    state = status()
    assert state.available and not state.installed and not state.usable
    assert state.executable == str(path) and state.version == "1.11.2"
    assert "is not installed: run `pyanode julia install`" in state.reason
    before = juliacall_was_imported()
    with pytest.raises(JuliaUnavailable, match="not installed: Julia 1.11.2 at"):
        load()
    assert juliacall_was_imported() == before


def write_meta(
    tmp_path: Path, executable: Path, version: str, julia_dir: Path, extra: tuple[str, ...] = ()
) -> Path:
    """juliapkg's record of a finished install of PyANODE (and the packages `extra`) for
    `executable`."""
    from juliapkg.deps import META_VERSION, _get_hash, deps_files
    from juliapkg.state import STATE, reset_state

    reset_state()
    files = {
        name: {"timestamp": os.path.getmtime(name), "hash_sha256": _get_hash(name)}
        for name in deps_files()
    }
    meta = {
        "meta_version": META_VERSION,
        "dev": STATE["dev"],
        "version": version,
        "executable": str(executable),
        "libjulia": "",
        "bindir": "",
        "deps_files": files,
        "pkgs": [
            {
                "name": "PyANODE",
                "uuid": _environment.PYANODE_UUID,
                "dev": True,
                "path": str(julia_dir),
            },
            *({"name": name, "uuid": "00000000-0000-0000-0000-000000000000"} for name in extra),
        ],
        "offline": False,
        "override_executable": str(executable),
    }
    path = Path(STATE["meta"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta))
    return path


def test_installed_is_read_from_juliapkg_metadata(bin_dir, tmp_path):
    path = fake_julia(bin_dir, GOOD_VERSION)
    julia_dir = julia_package_dir()
    assert julia_dir is not None and (julia_dir / "Project.toml").is_file()
    meta_path = write_meta(tmp_path, path, "1.11.2", julia_dir)
    state = status()
    assert state.usable
    assert state.reason == f"Julia 1.11.2 at {path} with PyANODE installed"
    # installed for another Julia version: not usable, and says which
    meta = json.loads(meta_path.read_text())
    meta["version"] = "1.10.4"
    meta_path.write_text(json.dumps(meta))
    state = status()
    assert state.available and not state.installed
    assert "was installed for Julia 1.10.4" in state.reason
    # PyANODE from another checkout
    meta["version"] = "1.11.2"
    meta["pkgs"][0]["path"] = str(tmp_path / "elsewhere")
    meta_path.write_text(json.dumps(meta))
    assert "has PyANODE from" in status().reason


def test_gpu_packages_are_read_from_juliapkg_metadata(bin_dir, tmp_path):
    path = fake_julia(bin_dir, GOOD_VERSION)
    julia_dir = julia_package_dir()
    write_meta(tmp_path, path, "1.11.2", julia_dir, extra=("CUDA",))
    state = status()
    assert state.usable and not state.gpu  # cuDNN.jl is missing
    write_meta(tmp_path, path, "1.11.2", julia_dir, extra=("CUDA", "cuDNN"))
    state = status()
    assert state.usable and state.gpu
    assert state.reason.endswith("with PyANODE installed (and CUDA.jl)")


def test_the_cuda_test_needs_a_gpu_and_the_gpu_packages():
    """Issue 15, defect 5: the conformance test on CUDA runs only with the backend usable,
    CUDA.jl and cuDNN.jl installed and an NVIDIA GPU listed."""
    from julia_helpers import cuda_skip_reason

    from pyanode.julia import JuliaStatus

    usable = JuliaStatus(True, "ok", "/j", "1.11.2", installed=True, gpu=True)
    assert cuda_skip_reason(usable, gpus=["GPU 0: NVIDIA H200 (UUID: x)"]) is None
    assert cuda_skip_reason(usable, gpus=[]) == "no NVIDIA GPU found (`nvidia-smi -L` lists none)"
    cpu_only = JuliaStatus(True, "ok", "/j", "1.11.2", installed=True, gpu=False)
    assert "pyanode julia install --gpu" in cuda_skip_reason(cpu_only, gpus=["GPU 0: x"])
    missing = JuliaStatus(False, "no Julia executable found")
    assert cuda_skip_reason(missing, gpus=["GPU 0: x"]) == "no Julia executable found"


def test_load_sets_juliapkg_offline_before_it_resets(bin_dir, monkeypatch):
    """Issue 15, defect 4: juliapkg reads PYTHON_JULIAPKG_OFFLINE only when its state is reset
    (and juliacall does not reset it again once status() has imported juliapkg), so what load()
    configures before importing juliacall must leave juliapkg offline and pinned."""
    from juliapkg.state import STATE, reset_state

    from pyanode.julia import _load

    path = fake_julia(bin_dir, GOOD_VERSION)
    monkeypatch.setenv("PYTHON_JULIAPKG_OFFLINE", "no")  # undone (with the pin) after the test
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", "")
    reset_state()
    assert STATE["offline"] is False
    try:
        _load._configure(str(path))
        assert STATE["offline"] is True
        assert STATE["override_executable"] == str(path)
    finally:
        monkeypatch.undo()
        reset_state()


def test_a_julia_error_is_summed_up_in_one_line():
    from pyanode.julia._load import _summary

    err = RuntimeError("LoadError: UndefVarError: `x` not defined\nStacktrace:\n [1] top")
    assert _summary(err) == "RuntimeError: LoadError: UndefVarError: `x` not defined"
    assert len(_summary(RuntimeError("y" * 1000))) == 300


INSTALLABLE = """case "$*" in
  *--version*) echo "julia version 1.11.2" ;;
  *Libdl*) printf '%s\\0%s' /fake/lib/libjulia.so /fake/bin ;;
  *) pwd >> "{log}" ;;
esac
"""


def test_install_and_status_agree_whatever_the_working_directory_holds(
    bin_dir, tmp_path, monkeypatch
):
    """Issue 15, risk 8: juliapkg merges the juliapkg.json files on sys.path, an empty entry
    being the working directory. The install child runs in a neutral directory with this
    process's import path, so it installs exactly what status() here checks: a juliapkg.json of
    another package in the working directory, which this process does not scan (as under the
    `pyanode` script, whose sys.path starts with its bin folder), is not installed, and the
    backend is usable right after the install."""
    from juliapkg.deps import deps_files
    from juliapkg.state import STATE

    log = tmp_path / "julia-cwd.log"
    fake_julia(bin_dir, INSTALLABLE.format(log=log))
    here = tmp_path / "project"
    (here / "otherpkg").mkdir(parents=True)
    (here / "otherpkg" / "juliapkg.json").write_text(
        '{"packages": {"Example": {"uuid": "7876af07-990d-54b4-ab0e-23690620f79a"}}}'
    )
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p and Path(p) != here])
    state = install(timeout=300, stream=io.StringIO())
    assert state.usable
    recorded = json.loads(Path(STATE["meta"]).read_text())["deps_files"]
    assert set(recorded) == set(deps_files())
    assert not any("otherpkg" in name for name in recorded)
    cwds = log.read_text().split()
    assert cwds and all(Path(cwd) != here for cwd in cwds)


def test_disabled_by_environment(bin_dir, monkeypatch):
    fake_julia(bin_dir, GOOD_VERSION)
    monkeypatch.setenv("PYANODE_DISABLE_JULIA", "1")
    state = status()
    assert not state.available
    assert state.reason == "disabled by PYANODE_DISABLE_JULIA=1; unset it to use Julia"


def test_missing_juliacall_package(bin_dir, monkeypatch):
    real = _environment.importlib.util.find_spec
    monkeypatch.setattr(
        _environment.importlib.util,
        "find_spec",
        lambda name: None if name == "juliacall" else real(name),
    )
    state = status()
    assert not state.available
    assert "the Python package juliacall is not installed" in state.reason
    assert "pip install -e '.[julia]'" in state.reason


def test_install_without_julia_raises_at_once(bin_dir, no_process, no_network):
    with pytest.raises(JuliaUnavailable, match="cannot install the Julia backend: no Julia"):
        install()  # at once: no process started, nothing downloaded
    with pytest.raises(ValueError, match="timeout must be a finite number > 0, got 0"):
        install(timeout=0)
    with pytest.raises(ValueError, match="gpu must be true or false, got 'yes'"):
        install(gpu="yes")
    with pytest.raises(ValueError, match="timeout must be a finite number > 0, got -1"):
        status(timeout=-1)
    with pytest.raises(ValueError, match="cuda must be true or false, got 1"):
        load(cuda=1)


def test_install_with_a_failing_julia_reports_it_and_downloads_nothing(bin_dir):
    fake_julia(bin_dir, GOOD_VERSION)
    out = io.StringIO()
    with pytest.raises(JuliaUnavailable, match=r"failed \(exit status 1\)") as caught:
        install(timeout=120, stream=out)
    message = str(caught.value)
    assert f"'{bin_dir / 'julia'}', '--project=" in message  # the failing Julia command
    assert "returned non-zero exit status 3" in message
    log = out.getvalue()
    assert f"installing PyANODE from {julia_package_dir()} with Julia {bin_dir / 'julia'}" in log
    assert "RuntimeWarning" not in log
    assert "Downloading" not in log and "Installing Julia" not in log


def test_install_timeout_stops_the_child(bin_dir, tmp_path):
    pid_file = tmp_path / "install.pid"
    fake_julia(
        bin_dir,
        'case "$*" in\n  *--version*) echo "julia version 1.11.2" ;;\n'
        f'  *) echo $$ > "{pid_file}"; sleep 60 ;;\nesac\n',
    )
    start = time.perf_counter()
    with pytest.raises(JuliaUnavailable, match=r"timed out after 3 s and was stopped"):
        install(timeout=3, stream=io.StringIO())
    assert time.perf_counter() - start < 45.0  # the fake install would take 60 s
    if pid_file.exists():  # the fake Julia was reached: it must have been killed with the child
        assert not still_running(int(pid_file.read_text())), "the install's julia was left"


def test_auto_backend_falls_back_to_torch_once(bin_dir, monkeypatch, caplog):
    backends = pytest.importorskip("pyanode.backends")
    monkeypatch.setattr(backends, "_AUTO_SAID", False)
    with caplog.at_level("WARNING", logger="pyanode"):
        first = backends.get_backend("auto")
        second = backends.get_backend("auto")
    assert first.name == second.name == "torch"
    said = [r.getMessage() for r in caplog.records if "backend 'auto'" in r.getMessage()]
    assert said == [
        "backend 'auto': using torch (Julia: no Julia executable found (looked at PYANODE_JULIA, "
        "PYTHON_JULIACALL_EXE, PYTHON_JULIAPKG_EXE, PATH and ~/.juliaup); "
        f"{_environment.GET_JULIA_HINT})"
    ]
    backend = backends.get_backend("julia")
    assert backend.name == "julia"


def test_julia_backend_checks_specs_before_starting_julia(bin_dir):
    from pyanode.data import Dataset
    from pyanode.julia import JuliaBackend
    from pyanode.specs import ModelSpec, SolverSpec, TrainSpec

    rng = __import__("numpy").random.default_rng(0)
    x = rng.normal(size=(8, 2)).astype("float32")
    data = Dataset(x, (x[:, 0] > 0).astype("int64"), "toy", "classification", {"n_classes": 2})
    # every model kind reaches the Julia start (and fails there only for want of Julia)
    for kind in ("chebyshev", "fourier", "stacked", "adaptive-depth", "resnet"):
        with pytest.raises(JuliaUnavailable, match="not available: no Julia executable found"):
            JuliaBackend().fit(ModelSpec(kind=kind), SolverSpec(), TrainSpec(epochs=1), data)
    with pytest.raises(SpecError, match="train.loss='mse' does not fit classification data"):
        JuliaBackend().fit(ModelSpec(), SolverSpec(), TrainSpec(loss="mse"), data)
    images = Dataset(
        rng.normal(size=(4, 1, 2, 2)).astype("float32"),
        __import__("numpy").array([0, 1, 0, 1]),
        "images",
        "classification",
    )
    with pytest.raises(DataError, match=r"takes vector data \(N, D\), got 'images'"):
        JuliaBackend().fit(ModelSpec(), SolverSpec(), TrainSpec(), images)
    with pytest.raises(JuliaUnavailable, match="not available: no Julia executable found"):
        JuliaBackend().fit(ModelSpec(kind="anode", augment_dim=1), SolverSpec(), TrainSpec(), data)


def test_batch_order_is_the_torch_trainers():
    trainer = pytest.importorskip("pyanode.torch._trainer")
    from pyanode.julia.backend import batch_order

    for seed, epoch, n in [(0, 0, 10), (3, 7, 97)]:
        assert (batch_order(seed, epoch, n) == trainer.batch_order(seed, epoch, n)).all()


def test_worker_reports_a_missing_julia(bin_dir):
    from julia_helpers import JuliaWorker

    with pytest.raises(JuliaUnavailable, match="the Julia worker could not start: the Julia ") as e:
        JuliaWorker(start_timeout=120)
    assert "not available: no Julia executable found" in str(e.value)


def test_conformance_tests_have_time_for_julia():
    """Issue 15, risk 9: the conformance tests share one worker per module (Julia starts and
    compiles once) and each may run past the suite's 600 s, the first compiling the adjoints."""
    import test_julia_conformance as conformance

    timeouts = [mark.args[0] for mark in conformance.pytestmark if mark.name == "timeout"]
    assert timeouts == [conformance.JULIA_TIMEOUT] and conformance.JULIA_TIMEOUT >= 1800
    assert "julia" in {mark.name for mark in conformance.pytestmark}
