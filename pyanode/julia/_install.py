"""`pyanode julia install`: resolve PyANODE's Julia environment in a child process.

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
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import TextIO

from pyanode._errors import JuliaUnavailable
from pyanode._validate import check_bool, check_number
from pyanode.julia._status import (
    GPU_PACKAGES,
    PYANODE_UUID,
    JuliaStatus,
    _kill,
    julia_package_dir,
    pin_executable,
    status,
)

_TAIL_LINES = 30
_PATH_VARIABLE = "PYANODE_JULIA_SYS_PATH"  # this process's sys.path, for the child
# `-c`, not `-m`: the package imports this module, and runpy warns about running it again
_CHILD_ENTRY = (
    "import json, os, sys; "
    f"sys.path[:] = json.loads(os.environ[{_PATH_VARIABLE!r}]); "
    "from pyanode.julia._install import main; sys.exit(main())"
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
    parser = argparse.ArgumentParser(prog="pyanode.julia._install")
    parser.add_argument("--child", required=True, metavar="JULIA")
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args(argv)
    return _child(args.child, args.gpu)
