"""`pyanode julia status | install`: the Julia backend's explicit set-up step."""

from __future__ import annotations

import argparse
import sys

from pyanode._errors import JuliaUnavailable


def add_parser(sub, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="status and installation of the Julia backend",
        description="The Julia backend (Lux + OrdinaryDiffEq + SciMLSensitivity through "
        "juliacall). `install` resolves PyANODE's Julia packages in a child process; it never "
        "downloads Julia itself. See docs/julia.md.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("status", help="say whether the Julia backend is usable, and why not")
    add = actions.add_parser("install", help="install PyANODE's Julia packages (child process)")
    add.add_argument("--gpu", action="store_true", help="also add CUDA.jl and cuDNN.jl")
    add.add_argument("--timeout", type=float, help="stop after this many seconds")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
