"""Detecting Julia without Julia: no executable, fake ones that are too old, broken or hanging.

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
from pyanode.julia import _status, available, install, julia_package_dir, load, status

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


def test_no_julia_status_is_fast_and_says_why(bin_dir):
    before = juliacall_was_imported()
    start = time.perf_counter()
    state = status()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert not state.available and not state.installed and not state.usable
    assert state.reason.startswith("no Julia executable found")
    assert "PYANODE_JULIA=/path/to/julia" in state.reason
    assert state.executable is None
    assert not available()
    assert juliacall_was_imported() == before


def test_status_command_without_julia(bin_dir):
    code = (
        "import sys, time; t = time.perf_counter(); import pyanode.julia as j; s = j.status(); "
        "print(s.reason); print('elapsed', time.perf_counter() - t); "
        "print('juliacall', 'juliacall' in sys.modules, 'torch', 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("no Julia executable found")
    assert lines[2] == "juliacall False torch False"
    cli = subprocess.run(
        [sys.executable, "-m", "pyanode.julia", "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1
    assert "julia backend: not usable: no Julia executable found" in cli.stdout


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
    assert time.perf_counter() - start < 5.0
    assert not state.available
    assert "did not answer `julia --version` within 0.5 s" in state.reason
    assert not still_running(int(pid_file.read_text())), "the hanging julia's child was left"


def test_probe_timeout_from_environment(bin_dir, monkeypatch):
    monkeypatch.setenv("PYANODE_JULIA_PROBE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="PYANODE_JULIA_PROBE_TIMEOUT='soon' is not a number"):
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
    assert "is not installed: run `python -m pyanode.julia install`" in state.reason
    before = juliacall_was_imported()
    with pytest.raises(JuliaUnavailable, match="not installed: Julia 1.11.2 at"):
        load()
    assert juliacall_was_imported() == before


def write_meta(tmp_path: Path, executable: Path, version: str, julia_dir: Path) -> Path:
    """juliapkg's record of a finished install of PyANODE for `executable`."""
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
            {"name": "PyANODE", "uuid": _status.PYANODE_UUID, "dev": True, "path": str(julia_dir)}
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


def test_disabled_by_environment(bin_dir, monkeypatch):
    fake_julia(bin_dir, GOOD_VERSION)
    monkeypatch.setenv("PYANODE_DISABLE_JULIA", "1")
    state = status()
    assert not state.available
    assert state.reason == "disabled by PYANODE_DISABLE_JULIA=1; unset it to use Julia"


def test_missing_juliacall_package(bin_dir, monkeypatch):
    real = _status.importlib.util.find_spec
    monkeypatch.setattr(
        _status.importlib.util,
        "find_spec",
        lambda name: None if name == "juliacall" else real(name),
    )
    state = status()
    assert not state.available
    assert "the Python package juliacall is not installed" in state.reason
    assert "pip install 'pyanode[julia]'" in state.reason


def test_install_without_julia_raises_at_once(bin_dir):
    start = time.perf_counter()
    with pytest.raises(JuliaUnavailable, match="cannot install the Julia backend: no Julia"):
        install()
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ValueError, match="timeout=0 must be a number of seconds > 0"):
        install(timeout=0)


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
    assert time.perf_counter() - start < 30.0
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
        f"{_status.GET_JULIA_HINT})"
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
    import numpy as np

    from pyanode.julia._worker import run_worker
    from pyanode.specs import ModelSpec, SolverSpec, TrainSpec

    request = {
        "model": ModelSpec().to_dict(),
        "solver": SolverSpec().to_dict(),
        "train": TrainSpec().to_dict(),
        "data": {"task": "classification", "n_classes": 2},
        "ops": [{"op": "predict"}],
    }
    arrays = {"x": np.zeros((2, 2), np.float32), "y": np.array([0, 1])}
    with pytest.raises(JuliaUnavailable, match=r"the Julia worker failed \(exit 1\)") as caught:
        run_worker(request, arrays, timeout=120)
    assert "not available: no Julia executable found" in str(caught.value)
