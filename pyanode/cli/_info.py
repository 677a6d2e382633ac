"""`pyanode info`: versions, devices and whether the Julia backend is usable."""

from __future__ import annotations

import argparse
import platform


def add_parser(sub, name: str) -> None:
    parser = sub.add_parser(name, help="versions, devices and Julia status")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy
    import torch

    import pyanode
    from pyanode import julia

    print(f"pyanode {pyanode.__version__}")
    print(f"python {platform.python_version()}, numpy {numpy.__version__}, torch {torch.__version__}")
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    print(f"devices: {', '.join(devices)} (torch threads: {torch.get_num_threads()})")
    state = julia.status()
    usable = "usable" if state.available and state.installed else "not usable"
    print(f"julia backend: {usable}: {state.reason}")
    return 0
