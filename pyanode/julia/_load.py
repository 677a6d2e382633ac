"""Start Julia in this process and load PyANODE: the only module that imports juliacall.

It is also the only place that sets PYTHON_JULIACALL_* variables. Loading never installs
anything: juliapkg is pinned to the Julia that `status()` found and put offline, so a missing
package is a clear `JuliaUnavailable` (run `pyanode julia install`) instead of a long install,
or a Julia download, in the middle of a run. Julia cannot be restarted in a process,
so a failed start is remembered and reported again on the next call.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from pyanode._errors import JuliaUnavailable
from pyanode._validate import check_bool
from pyanode.julia._environment import INSTALL_HINT, pin_executable, status

_SESSION: JuliaSession | None = None
_FAILURE: str | None = None


class JuliaSession:
    """The running Julia: `jl` is juliacall's module, `PyANODE` the Julia package."""

    def __init__(self, juliacall: Any, jl: Any, executable: str, version: str):
        self.juliacall = juliacall
        self.jl = jl
        self.PyANODE = jl.PyANODE
        self.executable = executable
        self.version = version
        self.cuda = False

    def enable_cuda(self) -> None:
        """Load CUDA.jl and cuDNN.jl so that `device="cuda"` finds the GPU.

        Raises:
            JuliaUnavailable: if they are not installed in the Julia environment.
        """
        if self.cuda:
            return
        try:
            self.jl.seval("import CUDA, cuDNN")
        except Exception as err:
            raise JuliaUnavailable(
                f"CUDA.jl/cuDNN.jl could not be loaded ({_summary(err)}); install them with "
                "`pyanode julia install --gpu`"
            ) from None
        self.cuda = True


def load(*, cuda: bool = False) -> JuliaSession:
    """Start Julia (once per process) and load PyANODE.

    Import this before torch and matplotlib when you can: juliacall warns (and can crash on
    some systems) when torch was imported first.

    Arguments:
        cuda: also load CUDA.jl and cuDNN.jl (installed by `install(gpu=True)`).

    Returns:
        The `JuliaSession`.

    Raises:
        JuliaUnavailable: naming the reason and the fix: no usable Julia, the environment not
            installed, juliacall failing to start Julia, or `using PyANODE` failing.
    """
    global _SESSION, _FAILURE
    check_bool("cuda", cuda)
    if _FAILURE is not None:
        raise JuliaUnavailable(_FAILURE)
    if _SESSION is None:
        state = status()
        if not state.available or state.executable is None or state.version is None:
            raise JuliaUnavailable(f"the Julia backend is not available: {state.reason}")
        if not state.installed:
            raise JuliaUnavailable(f"the Julia backend is not installed: {state.reason}")
        _SESSION = _start(state.executable, state.version)
    if cuda:
        _SESSION.enable_cuda()
    return _SESSION


def _configure(executable: str) -> None:
    """Environment for juliapkg and juliacall, set before juliacall is imported.

    juliapkg reads its variables only when its state is reset, which `pin_executable` does (and
    juliacall does not do again if juliapkg is already imported, as `status()` leaves it): so
    the offline switch is set first, and the reset reads both.
    """
    os.environ["PYTHON_JULIAPKG_OFFLINE"] = "yes"
    pin_executable(executable)
    threads = os.environ.get("PYANODE_JULIA_THREADS")
    if threads:
        os.environ.setdefault("PYTHON_JULIACALL_THREADS", threads)
        if threads != "1":
            # multithreaded Julia inside Python needs Julia to own the signal handlers
            os.environ.setdefault("PYTHON_JULIACALL_HANDLE_SIGNALS", "yes")


def _start(executable: str, version: str) -> JuliaSession:
    global _FAILURE
    _configure(executable)
    if "torch" in sys.modules:
        warnings.warn(
            "torch was imported before Julia was started; juliacall can then crash on some "
            "systems. Call pyanode.julia.load() before importing torch, or run the Julia "
            "backend in a process of its own.",
            stacklevel=3,
        )
    try:
        import juliacall
    except Exception as err:
        _FAILURE = (
            f"juliacall could not start Julia {version} at {executable} ({_summary(err)}); "
            f"{INSTALL_HINT}, then start a new Python process"
        )
        raise JuliaUnavailable(_FAILURE) from None
    try:
        jl = juliacall.newmodule("PyANODEBridge")
        jl.seval("using PyANODE: PyANODE")
    except Exception as err:
        _FAILURE = (
            f"`using PyANODE` failed in Julia {version} at {executable} ({_summary(err)}); "
            f"{INSTALL_HINT}, then start a new Python process"
        )
        raise JuliaUnavailable(_FAILURE) from None
    return JuliaSession(juliacall, jl, executable, version)


def _summary(err: BaseException, limit: int = 300) -> str:
    """`Type: first line of the message`, at most `limit` characters: the reason inside a
    one-line `JuliaUnavailable` (a Julia error's text can run to many lines)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
