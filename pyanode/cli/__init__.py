"""The `pyanode` command: one subcommand per entry of `COMMANDS`.

A command's module is imported only when that command runs (or its own --help is asked for), so
`pyanode --help` loads no torch: the list of commands and their one-line help live here.
Options come from the specs' and configs' dataclasses (`pyanode.cli._options`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from pyanode._errors import (
    DataError,
    JuliaUnavailable,
    SolverError,
    SpecError,
    StoreError,
    TrainingDiverged,
)
from pyanode.cli._options import add_commands

# command -> (module, the function of the module that adds the command's arguments, help)
COMMANDS = {
    "train": ("pyanode.cli._trials", "add_train", "train one model on one dataset"),
    "reproduce": ("pyanode.cli._experiments", "add_reproduce",
                  "reproduce a table or figures of the papers"),
    "study": ("pyanode.cli._experiments", "add_study",
              "solver-accuracy studies (work-precision, gradients, cross-solver, batch coupling)"),
    "sweep": ("pyanode.cli._trials", "add_sweep", "run a grid of trials from a sweep config"),
    "collect": ("pyanode.cli._trials", "add_collect",
                "collect the trials under a results folder into one CSV"),
    "report": ("pyanode.cli._report", "add_arguments",
               "regenerate (or check) the numbers of the docs from the stored results"),
    "info": ("pyanode.cli._julia", "add_info", "versions, devices and Julia status"),
    "julia": ("pyanode.cli._julia", "add_julia", "status and installation of the Julia backend"),
}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse, with a user's mistake on one line (naming the fix: the command's --help)
    instead of the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Terminated(BaseException):
    """SIGTERM: leave as Ctrl-C does (workers ended, files whole), with exit code 143."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While a command runs, SIGTERM raises `Terminated` (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _positionals(argv: list[str]) -> list[str]:
    """The words of `argv` that are not options (the command, then a subcommand)."""
    return [word for word in argv if not word.startswith("-")]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` gets its arguments (and its imports)."""
    words = _positionals(argv or [])
    parser = Parser(
        prog="pyanode",
        allow_abbrev=False,  # an option is spelled out: --epoch is not --epochs
        description="Neural ODEs, their limits and the ways around them (ANODE, IL-NODE, "
        "data-controlled, depth-variant, adaptive-depth), with torch and Julia backends.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")

    def add(command: argparse.ArgumentParser, name: str) -> None:
        module, adder, _ = COMMANDS[name]
        getattr(importlib.import_module(module), adder)(command, words[1:])

    helps = {name: text for name, (_, _, text) in COMMANDS.items()}
    add_commands(parser, "command", "COMMAND", helps, words, add)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="pyanode: %(message)s"
    )
    try:
        with _sigterm_unwinds():
            return int(args.run(args) or 0)
    except (SpecError, DataError, FileNotFoundError, JuliaUnavailable) as err:
        # a user's mistake, found before anything ran; JuliaUnavailable: `--backend julia`
        # without a usable Julia. Each message says the fix.
        parser.exit(2, f"pyanode {args.command}: error: {_one_line(err)}\n")
    except (SolverError, TrainingDiverged, StoreError) as err:
        # StoreError: the disk refused a write; the message says how to resume
        parser.exit(1, f"pyanode {args.command}: failed: {_one_line(err)}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"pyanode {args.command}: interrupted; run the same command again "
                    "to resume\n")  # fmt: skip
    except Terminated:
        parser.exit(143, f"pyanode {args.command}: terminated; run the same command again "
                    "to resume\n")  # fmt: skip


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


if __name__ == "__main__":
    sys.exit(main())
