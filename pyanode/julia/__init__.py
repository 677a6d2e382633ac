"""The Python side of the Julia backend: detect Julia, install, load, and the backend itself.

Nothing here imports juliacall (or torch) until `load()` is called, and the backend module
(numpy, the data package) loads on first use, so `status()` is fast and safe everywhere.
Typical use by someone with Julia:

    pyanode julia install        # once; a child process, many minutes
    pyanode julia status         # why the backend is (not) usable

See docs/julia.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from pyanode._errors import JuliaUnavailable as JuliaUnavailable
from pyanode.julia._environment import JuliaStatus as JuliaStatus
from pyanode.julia._environment import available as available
from pyanode.julia._environment import install as install
from pyanode.julia._environment import julia_package_dir as julia_package_dir
from pyanode.julia._environment import status as status
from pyanode.julia._load import JuliaSession as JuliaSession
from pyanode.julia._load import load as load

_LAZY = {"JuliaBackend": "pyanode.julia.backend", "JuliaFitted": "pyanode.julia.backend"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyanode.julia' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
