"""Scan Julia files for syntax errors with tree-sitter-julia, without a Julia installation.

Usage: ``python tools/check_julia_syntax.py [PATH ...]`` (default: ``julia``). Every ``.jl`` file
under the given paths is parsed; each ERROR or MISSING node of the syntax tree is printed as
``file:line:column: message`` and the exit status is 1 if there is any, else 0.

This is a second opinion beside ``fatou lint julia``: tree-sitter-julia 0.23 reports a few false
errors on exotic syntax (Unicode subscript identifiers, ``var"..."`` imports), so keep the package
free of those rather than working around the checker.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path


def julia_parser():
    """A tree-sitter parser for Julia (tree-sitter-julia, from the lint extra)."""
    try:
        import tree_sitter_julia
        from tree_sitter import Language, Parser
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise SystemExit(
            f"check_julia_syntax: {err}; install the lint extra: "
            "pip install 'tree-sitter==0.26.1' 'tree-sitter-julia==0.23.1'"
        ) from None
    return Parser(Language(tree_sitter_julia.language()))


def julia_files(paths: list[Path]) -> Iterator[Path]:
    """Every ``.jl`` file under `paths` (files are taken as given), in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.jl"))
        elif path.is_file():
            yield path
        else:
            raise SystemExit(f"check_julia_syntax: {path} does not exist")


def syntax_errors(source: bytes, parser=None) -> list[tuple[int, int, str]]:
    """The (line, column, message) of every ERROR or MISSING node in `source`, 1-based."""
    parser = parser or julia_parser()
    tree = parser.parse(source)
    found: list[tuple[int, int, str]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            row, col = node.start_point
            found.append((row + 1, col + 1, f"missing {node.type!r}"))
        elif node.is_error:
            row, col = node.start_point
            text = source[node.start_byte : node.end_byte].decode("utf8", "replace")
            first_line = text.splitlines()[0] if text else ""
            found.append((row + 1, col + 1, f"syntax error near {first_line[:60]!r}"))
        if node.has_error:
            stack.extend(reversed(node.children))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("paths", nargs="*", type=Path, default=[Path("julia")])
    options = args.parse_args(argv)
    parser = julia_parser()
    n_files = n_errors = 0
    for path in julia_files(options.paths):
        n_files += 1
        for line, col, message in syntax_errors(path.read_bytes(), parser):
            n_errors += 1
            print(f"{path}:{line}:{col}: {message}")
    print(f"checked {n_files} Julia file(s): {n_errors} syntax error(s)", file=sys.stderr)
    return 1 if n_errors else 0


if __name__ == "__main__":
    sys.exit(main())
