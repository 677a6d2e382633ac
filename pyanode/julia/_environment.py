"""PyANODE's Julia environment: is the Julia backend usable here (`status`), and install it
(`install`, the `pyanode julia install` command).

`status` answers without importing juliacall and without hanging: from a `julia` executable
probed with `julia --version` under a timeout, and from the metadata juliapkg wrote when
`install` resolved PyANODE's Julia environment; no Julia code runs and nothing is downloaded.
With no Julia at all the answer takes a few milliseconds.

The first install downloads and precompiles Lux, OrdinaryDiffEq, SciMLSensitivity and their
dependencies: many minutes. It runs in a child Python (so that a long or stuck install can be
watched, stopped with Ctrl-C or a timeout, and never leaves half-started Julia in the caller),
with juliapkg pinned to the Julia that `status()` found, so that juliapkg never downloads Julia.
juliapkg merges the juliapkg.json files it finds on `sys.path` (an empty entry meaning the
working directory), and `status()` compares that set with the one recorded at install. So the
child runs in a neutral working directory with exactly this process's import path: it installs
what this process would load, whatever the two working directories hold.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pyanode._errors import JuliaUnavailable
from pyanode._validate import check_bool, check_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYANODE_UUID = "caf37e0f-6fd3-4ced-9468-c78ce2d09e2c"  # julia/Project.toml
MIN_JULIA = (1, 10)
DEFAULT_PROBE_TIMEOUT = 15.0  # seconds for `julia --version`; PYANODE_JULIA_PROBE_TIMEOUT overrides
INSTALL_HINT = "run `pyanode julia install` (add `--gpu` for CUDA)"
# What `install(gpu=True)` adds and `load(cuda=True)` loads: CUDA.jl and cuDNN.jl, which
# MLDataDevices needs before gpu_device() picks a CUDA device. (name, uuid, version)
GPU_PACKAGES = (
    ("CUDA", "052768ef-5323-5732-b1bb-66c8b64840ba", "5.8, 6"),
    ("cuDNN", "02a925ec-e4fe-4b08-9a7e-0d78e3d38ccd", "1"),
)
GET_JULIA_HINT = (
    f"install Julia >= {MIN_JULIA[0]}.{MIN_JULIA[1]} (https://julialang.org/downloads, e.g. with "
    "juliaup) and put `julia` on PATH, or set PYANODE_JULIA=/path/to/julia"
)
_VERSION_RE = re.compile(r"julia version (\d+)\.(\d+)\.(\d+)(\S*)")
# Environment variables naming a Julia explicitly: if the one set first is broken, say so
# rather than silently using another Julia.
_EXPLICIT = ("PYANODE_JULIA", "PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE")


@dataclass(frozen=True)
class JuliaStatus:
    """What `status()` found.

    Arguments:
        available: a working Julia >= 1.10 and the juliacall/juliapkg Python packages are here.
        reason: one line for people: what was found, or why not and the fix.
        executable: the Julia executable that would be used (None if none works).
        version: its version, e.g. "1.11.2".
        installed: PyANODE's Julia environment is resolved for this executable, so `load()`
            starts without installing anything.
        gpu: that environment also holds CUDA.jl and cuDNN.jl (`install(gpu=True)`), so
            `load(cuda=True)` can load them; whether a GPU works is Julia's to say.
    """

    available: bool
    reason: str
    executable: str | None = None
    version: str | None = None
    installed: bool = False
    gpu: bool = False

    @property
    def usable(self) -> bool:
        """Both `available` and `installed`: the Julia backend can run now."""
        return self.available and self.installed


@dataclass(frozen=True)
class _Probe:
    origin: str
    executable: str
    version: str | None
    problem: str | None  # None when this Julia works


_PROBES: dict[tuple[str, float], _Probe] = {}


def julia_package_dir() -> Path | None:
    """The Julia package PyANODE: `pyanode/_julia` in a wheel, `<repo>/julia` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_julia", package.parent / "julia"):
        if (candidate / "Project.toml").is_file():
            return candidate
    return None


def probe_timeout() -> float:
    """Seconds to wait for `julia --version` (PYANODE_JULIA_PROBE_TIMEOUT, default 15).

    Raises:
        ValueError: when the variable is not a number of seconds > 0.
    """
    text = os.environ.get("PYANODE_JULIA_PROBE_TIMEOUT")
    if not text:
        return DEFAULT_PROBE_TIMEOUT
    try:
        value: object = float(text)
    except ValueError:
        value = text
    return check_number("PYANODE_JULIA_PROBE_TIMEOUT", value, low=0, strict_low=True)


def _candidates() -> list[tuple[str, str]]:
    """(origin, path) of every Julia executable to try, in order."""
    found: list[tuple[str, str]] = []
    for name in _EXPLICIT:
        value = os.environ.get(name)
        if value:
            found.append((name, value))
    meta = _juliapkg_meta()
    if meta is not None and meta.get("executable"):
        found.append(("the Julia recorded by the last install", str(meta["executable"])))
    on_path = shutil.which("julia")
    if on_path:
        found.append(("PATH", on_path))
    juliaup = Path.home() / ".juliaup" / "bin" / "julia"
    if juliaup.is_file():
        found.append(("~/.juliaup", str(juliaup)))
    return found


def _kill(process: subprocess.Popen) -> None:
    """Kill `process` and everything it started (it runs in its own session on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _probe(origin: str, executable: str, timeout: float) -> _Probe:
    """Run `executable --version` for at most `timeout` seconds and judge the answer."""
    path = Path(executable)
    if not path.is_file():
        return _Probe(origin, executable, None, f"{executable} (from {origin}) does not exist")
    if not os.access(path, os.X_OK):
        return _Probe(origin, executable, None, f"{executable} (from {origin}) is not executable")
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _PROBES:
        return _PROBES[key]
    try:
        process = subprocess.Popen(
            [executable, "--startup-file=no", "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as err:
        return _Probe(origin, executable, None, f"{executable} (from {origin}) cannot run: {err}")
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        process.communicate()
        result = _Probe(
            origin,
            executable,
            None,
            f"{executable} (from {origin}) did not answer `julia --version` within {timeout:g} s "
            "(a broken install or a wrapper waiting for input?)",
        )
        _PROBES[key] = result
        return result
    result = _judge(origin, executable, process.returncode, out, err)
    _PROBES[key] = result
    return result


def _judge(origin: str, executable: str, returncode: int, out: str, err: str) -> _Probe:
    if returncode != 0:
        detail = (err.strip() or out.strip()).splitlines()[-3:]
        return _Probe(
            origin,
            executable,
            None,
            f"{executable} (from {origin}) is broken: `julia --version` exited with status "
            f"{returncode}" + (f": {' / '.join(detail)}" if detail else ""),
        )
    match = _VERSION_RE.search(out)
    if match is None:
        return _Probe(
            origin,
            executable,
            None,
            f"{executable} (from {origin}) is not Julia: `--version` printed {out.strip()[:80]!r}",
        )
    major, minor, patch, suffix = match.groups()
    version = f"{major}.{minor}.{patch}{suffix}"
    if (int(major), int(minor)) < MIN_JULIA:
        return _Probe(
            origin,
            executable,
            version,
            f"Julia {version} at {executable} (from {origin}) is too old: PyANODE needs Julia "
            f">= {MIN_JULIA[0]}.{MIN_JULIA[1]}",
        )
    return _Probe(origin, executable, version, None)


def _find_julia(timeout: float) -> tuple[_Probe | None, list[_Probe]]:
    """The first working Julia and the problems of those tried before it."""
    problems: list[_Probe] = []
    seen: set[str] = set()
    for origin, executable in _candidates():
        resolved = os.path.realpath(executable)
        if resolved in seen:
            continue
        seen.add(resolved)
        probe = _probe(origin, executable, timeout)
        if probe.problem is None:
            return probe, problems
        problems.append(probe)
        if origin in _EXPLICIT:
            break  # an explicit choice that does not work: do not fall back silently
    return None, problems


def pin_executable(executable: str) -> None:
    """Make juliapkg use `executable` and never download Julia (PYTHON_JULIAPKG_EXE).

    juliapkg reads the variable when its state is reset; it is reset here unless juliacall
    is already running (then the pin would change nothing).
    """
    os.environ["PYTHON_JULIAPKG_EXE"] = executable
    if "juliapkg" in sys.modules and "juliacall" not in sys.modules:
        from juliapkg.state import reset_state

        reset_state()


def _juliapkg_meta() -> dict | None:
    """juliapkg's record of the last resolve of the environment, or None."""
    if importlib.util.find_spec("juliapkg") is None:
        return None
    from juliapkg.deps import load_meta
    from juliapkg.state import reset_state

    if "juliacall" not in sys.modules:
        reset_state()  # pick up PYTHON_JULIAPKG_* set since juliapkg was imported
    try:
        return load_meta()
    except (OSError, ValueError):
        return None


def _same_path(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _check_installed(probe: _Probe, julia_dir: Path) -> str | None:
    """None if PyANODE's environment is resolved for `probe`'s Julia, else what is missing."""
    own_project = os.environ.get("PYTHON_JULIACALL_PROJECT")
    if own_project and os.environ.get("PYTHON_JULIACALL_EXE"):
        # juliacall bypasses juliapkg: the user's project must hold PyANODE itself.
        project = Path(own_project) / "Project.toml"
        if project.is_file() and PYANODE_UUID in project.read_text():
            return None
        return f"PYTHON_JULIACALL_PROJECT={own_project} has no PyANODE in its Project.toml"
    from juliapkg.deps import _get_hash, deps_files
    from juliapkg.state import STATE

    meta = _juliapkg_meta()
    where = STATE["project"]
    if meta is None:
        return f"PyANODE's Julia environment at {where} is not installed"
    pkgs = {p.get("name"): p for p in meta.get("pkgs", [])}
    if "PyANODE" not in pkgs:
        return f"PyANODE is not in the Julia environment at {where}"
    if not _same_path(pkgs["PyANODE"].get("path"), str(julia_dir)):
        return (
            f"the Julia environment at {where} has PyANODE from {pkgs['PyANODE'].get('path')}, "
            f"not from {julia_dir}"
        )
    if not _same_path(meta.get("override_executable"), probe.executable) or (
        meta.get("version") != probe.version
    ):
        return (
            f"the Julia environment at {where} was installed for Julia {meta.get('version')} at "
            f"{meta.get('executable')}, not for Julia {probe.version} at {probe.executable}"
        )
    recorded = meta.get("deps_files", {})
    current = set(deps_files())
    if current != set(recorded):
        changed = sorted(current.symmetric_difference(recorded))
        return f"the juliapkg.json files changed since the install ({', '.join(changed)})"
    for filename in current:
        if _get_hash(filename) != recorded[filename].get("hash_sha256"):
            return f"{filename} changed since the install"
    return None


def _gpu_installed() -> bool:
    """Whether the environment `load()` would use holds CUDA.jl and cuDNN.jl."""
    own_project = os.environ.get("PYTHON_JULIACALL_PROJECT")
    if own_project and os.environ.get("PYTHON_JULIACALL_EXE"):
        project = Path(own_project) / "Project.toml"
        try:
            names = set(tomllib.loads(project.read_text()).get("deps", {}))
        except (OSError, tomllib.TOMLDecodeError):
            return False
    else:
        meta = _juliapkg_meta() or {}
        names = {p.get("name") for p in meta.get("pkgs", [])}
    return all(name in names for name, _, _ in GPU_PACKAGES)


def status(*, timeout: float | None = None) -> JuliaStatus:
    """Whether the Julia backend can run, and why not; never imports juliacall, never hangs.

    Looks, in order, at PYANODE_JULIA, PYTHON_JULIACALL_EXE, PYTHON_JULIAPKG_EXE, the Julia of
    the last install, `julia` on PATH and ~/.juliaup/bin/julia; each is probed with
    `julia --version` for at most `timeout` seconds (default: PYANODE_JULIA_PROBE_TIMEOUT or
    15 s). PYANODE_DISABLE_JULIA=1 turns the backend off.

    Arguments:
        timeout: seconds to wait for each `julia --version`.

    Returns:
        A `JuliaStatus`; `status().usable` means `load()` will start without installing.

    Raises:
        ValueError: for a `timeout` (or PYANODE_JULIA_PROBE_TIMEOUT) that is not > 0.
    """
    if timeout is not None:
        timeout = check_number("timeout", timeout, low=0, strict_low=True)
    if os.environ.get("PYANODE_DISABLE_JULIA", "").strip() not in ("", "0", "no", "false"):
        return JuliaStatus(
            False,
            f"disabled by PYANODE_DISABLE_JULIA={os.environ['PYANODE_DISABLE_JULIA']}; "
            "unset it to use Julia",
        )
    for package in ("juliacall", "juliapkg"):
        if importlib.util.find_spec(package) is None:
            return JuliaStatus(
                False,
                f"the Python package {package} is not installed; "
                "install the julia extra: `pip install -e '.[julia]'` in pyanode's checkout",
            )
    julia_dir = julia_package_dir()
    if julia_dir is None:
        return JuliaStatus(
            False,
            "the Julia package PyANODE is missing from this installation (no julia/ beside the "
            "pyanode package, no pyanode/_julia); reinstall pyanode",
        )
    probe, problems = _find_julia(probe_timeout() if timeout is None else timeout)
    if probe is None:
        if not problems:
            return JuliaStatus(
                False,
                "no Julia executable found (looked at PYANODE_JULIA, PYTHON_JULIACALL_EXE, "
                f"PYTHON_JULIAPKG_EXE, PATH and ~/.juliaup); {GET_JULIA_HINT}",
            )
        first = problems[0]
        return JuliaStatus(
            False, f"{first.problem}; {GET_JULIA_HINT}", first.executable, first.version
        )
    missing = _check_installed(probe, julia_dir)
    found = f"Julia {probe.version} at {probe.executable}"
    if missing is not None:
        return JuliaStatus(
            True, f"{found}, but {missing}: {INSTALL_HINT}", probe.executable, probe.version
        )
    gpu = _gpu_installed()
    return JuliaStatus(
        True,
        f"{found} with PyANODE installed" + (" (and CUDA.jl)" if gpu else ""),
        probe.executable,
        probe.version,
        True,
        gpu,
    )


def available() -> bool:
    """True when the Julia backend can run now (`status().usable`)."""
    return status().usable


# -- install --------------------------------------------------------------------------------------
_TAIL_LINES = 30
_PATH_VARIABLE = "PYANODE_JULIA_SYS_PATH"  # this process's sys.path, for the child
# `-c`, not `-m`: the package imports this module, and runpy warns about running it again
_CHILD_ENTRY = (
    "import json, os, sys; "
    f"sys.path[:] = json.loads(os.environ[{_PATH_VARIABLE!r}]); "
    "from pyanode.julia._environment import main; sys.exit(main())"
)


def install(
    gpu: bool = False, timeout: float | None = None, *, stream: TextIO | None = None
) -> JuliaStatus:
    """Install PyANODE's Julia packages for the Julia that `status()` finds.

    Registers the Julia package in juliapkg's environment (`Pkg.develop` of this checkout's
    `julia/`, or `pyanode/_julia` in a wheel), resolves and precompiles it, and checks that
    `using PyANODE` works, all in a child process whose output is copied to `stream`.

    Arguments:
        gpu: also add CUDA.jl and cuDNN.jl for `train.device="cuda"`.
        timeout: seconds before the child is stopped (None: no limit; a first install can take
            10-30 minutes).
        stream: where the child's output goes (default: sys.stderr).

    Returns:
        The `JuliaStatus` after the install (`usable` is True).

    Raises:
        ValueError: for a `gpu` that is not a bool or a `timeout` that is not > 0.
        JuliaUnavailable: with no usable Julia executable, when the child fails or times out
            (the message holds the last lines of its output), or if the environment is still
            not usable afterwards.
    """
    check_bool("gpu", gpu)
    if timeout is not None:
        timeout = check_number("timeout", timeout, low=0, strict_low=True)
    before = status()
    if not before.available or before.executable is None:
        raise JuliaUnavailable(f"cannot install the Julia backend: {before.reason}")
    command = [sys.executable, "-c", _CHILD_ENTRY, "--child", before.executable]
    if gpu:
        command.append("--gpu")
    env = dict(os.environ, PYTHON_JULIAPKG_EXE=before.executable)
    env[_PATH_VARIABLE] = json.dumps(import_path())
    env.pop("PYTHON_JULIAPKG_OFFLINE", None)
    with tempfile.TemporaryDirectory(prefix="pyanode-julia-install-") as neutral:
        code, tail = _run_child(command, env, timeout, stream or sys.stderr, neutral)
    if code is None:
        raise JuliaUnavailable(
            f"installing PyANODE's Julia packages timed out after {timeout:g} s and was stopped "
            "(a first install downloads and precompiles SciMLSensitivity, Lux and "
            "OrdinaryDiffEq: allow 10-30 minutes); rerun `pyanode julia install` with a larger "
            "--timeout, or none. Last output:\n" + tail
        )
    if code != 0:
        raise JuliaUnavailable(
            f"installing PyANODE's Julia packages failed (exit status {code}); fix the error "
            "below and rerun `pyanode julia install`. Last output:\n" + tail
        )
    after = status()
    if not after.usable:
        raise JuliaUnavailable(
            f"the install finished but the backend is not usable: {after.reason}"
        )
    return after


def import_path() -> list[str]:
    """This process's `sys.path` with every entry absolute (an empty entry is the working
    directory): what juliapkg scans for juliapkg.json files here, wherever it runs."""
    return [os.path.abspath(entry or os.curdir) for entry in sys.path]


def _run_child(
    command: list[str], env: dict[str, str], timeout: float | None, stream: TextIO, cwd: str
) -> tuple[int | None, str]:
    """Run `command` in `cwd`, copying its output to `stream`; (exit status or None on timeout,
    the last lines of output)."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip("\n"))
            stream.write(line)
            stream.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        process.wait()
        reader.join(timeout=2.0)
        return None, "\n".join(tail)
    except KeyboardInterrupt:
        _kill(process)
        process.wait()
        raise
    reader.join(timeout=5.0)
    return process.returncode, "\n".join(tail)


def _child(executable: str, gpu: bool) -> int:
    """The install itself, in the child process (see `install`)."""
    julia_dir = julia_package_dir()
    if julia_dir is None:
        print("pyanode: the Julia package PyANODE is missing from this installation", flush=True)
        return 2
    pin_executable(executable)
    import juliapkg
    from juliapkg.state import STATE, reset_state

    reset_state()
    started = time.perf_counter()
    print(f"pyanode: installing PyANODE from {julia_dir} with Julia {executable}", flush=True)
    print(f"pyanode: Julia environment: {STATE['project']}", flush=True)
    juliapkg.add(juliapkg.PkgSpec("PyANODE", PYANODE_UUID, dev=True, path=str(julia_dir)))
    if gpu:
        for name, uuid, version in GPU_PACKAGES:
            juliapkg.add(juliapkg.PkgSpec(name, uuid, version=version))
    juliapkg.resolve(force=True)
    check = [executable, f"--project={STATE['project']}", "--startup-file=no", "-e"]
    loads = "using PyANODE" + (", CUDA, cuDNN" if gpu else "")
    print(f"pyanode: checking `{loads}`", flush=True)
    subprocess.run([*check, loads], check=True, stdin=subprocess.DEVNULL)
    print(f"pyanode: installed in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyanode.julia._environment")
    parser.add_argument("--child", required=True, metavar="JULIA")
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args(argv)
    return _child(args.child, args.gpu)
