"""The `pyanode` command: one subcommand per module, each with `add_parser(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pyanode._errors import DataError, JuliaUnavailable, SolverError, SpecError, TrainingDiverged

# subcommand name -> module defining add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "train": "pyanode.cli._train",
    "info": "pyanode.cli._info",
    "reproduce": "pyanode.cli._reproduce",
    "study": "pyanode.cli._study",
    "sweep": "pyanode.cli._sweep",
    "collect": "pyanode.cli._collect",
    "julia": "pyanode.cli._julia",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyanode",
        description="Neural ODEs, their limits and the ways around them (ANODE, IL-NODE, "
        "data-controlled, depth-variant, adaptive-depth), with torch and Julia backends.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        importlib.import_module(module).add_parser(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="pyanode: %(message)s"
    )
    try:
        return int(args.run(args) or 0)
    except (SpecError, DataError, FileNotFoundError, JuliaUnavailable) as err:
        # JuliaUnavailable: `--backend julia` without a usable Julia; the message says the fix
        parser.exit(2, f"pyanode {args.command}: error: {err}\n")
    except (SolverError, TrainingDiverged) as err:
        parser.exit(1, f"pyanode {args.command}: failed: {err}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"pyanode {args.command}: interrupted\n")


if __name__ == "__main__":
    sys.exit(main())
