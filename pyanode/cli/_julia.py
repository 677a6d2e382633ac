"""`pyanode julia status | install` (the Julia backend's explicit set-up step) and `pyanode
info` (versions, devices, and whether the Julia backend is usable)."""

from __future__ import annotations

import argparse
import platform
import sys

from pyanode._errors import JuliaUnavailable


def add_julia(parser: argparse.ArgumentParser, words: list[str]) -> None:
    parser.description = (
        "The Julia backend (Lux + OrdinaryDiffEq + SciMLSensitivity through juliacall). "
        "`install` resolves PyANODE's Julia packages in a child process; it never downloads "
        "Julia itself. See docs/julia.md."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("status", help="say whether the Julia backend is usable, and why not")
    add = actions.add_parser("install", help="install PyANODE's Julia packages (child process)")
    add.add_argument("--gpu", action="store_true", help="also add CUDA.jl and cuDNN.jl")
    add.add_argument("--timeout", type=float, help="stop after this many seconds")
    parser.set_defaults(run=run_julia)


def run_julia(args: argparse.Namespace) -> int:
    from pyanode import julia

    if args.action == "status":
        state = julia.status()
        print(f"julia backend: {'usable' if state.usable else 'not usable'}: {state.reason}")
        return 0 if state.usable else 1
    try:
        state = julia.install(gpu=args.gpu, timeout=args.timeout)
    except JuliaUnavailable as err:
        print(f"pyanode julia install: {err}", file=sys.stderr)
        return 1
    print(f"julia backend: usable: {state.reason}")
    return 0


def add_info(parser: argparse.ArgumentParser, words: list[str]) -> None:
    parser.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    import numpy
    import torch

    import pyanode
    from pyanode import julia

    print(f"pyanode {pyanode.__version__}")
    versions = f"numpy {numpy.__version__}, torch {torch.__version__}"
    print(f"python {platform.python_version()}, {versions}")
    devices = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(count)]
    print(f"devices: {', '.join(devices)} (torch threads: {torch.get_num_threads()})")
    state = julia.status()
    usable = "usable" if state.available and state.installed else "not usable"
    print(f"julia backend: {usable}: {state.reason}")
    return 0
