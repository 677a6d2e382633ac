"""The numbers in the documentation, generated: marked regions of the Markdown files are
rewritten from the committed results under `docs/data/`, and checked against them.

A region is everything between two markers on their own lines:

    <!-- report:table1 -->
    ... generated: do not edit by hand ...
    <!-- /report:table1 -->

Its text is `REGIONS[name](data)` (`pyanode.experiments.report_tables`): a pure function of the
committed files, which ends with the command, settings, machine, library versions, commit and
date that produced them. `rewrite` puts the generated text in place, `check` lists the regions
whose text differs (the docs freshness test runs it), and `pyanode report --rerun` first runs
the commands again (`pyanode.experiments.report_runs`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from pyanode._errors import SpecError
from pyanode.experiments.report_runs import DATA, JOB_NAMES
from pyanode.specs import setting

# the Markdown files whose numbers are generated, relative to the repository root
DOCUMENTS = ("README.md", "docs/*.md", "benchmarks/README.md")
MARKER = re.compile(r"^<!-- (/?)report:([a-z0-9-]+) -->$")


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    """What `pyanode report` does: by default rewrite the marked regions of the docs from the
    committed results under docs/data."""

    check: bool = setting(
        False,
        "only compare the docs with the committed results: exit 1 "
        "and show the difference if a region is stale",
        exclusive="mode",
    )
    rerun: bool = setting(
        False,
        "first run the documented commands again (finished runs in "
        "--results are kept), refresh docs/data, then rewrite the docs",
        exclusive="mode",
    )
    dry_run: bool = setting(
        False, "print what --rerun would run and how long it should take", exclusive="mode"
    )
    jobs: tuple[str, ...] = setting(
        (), "which runs, by name (--rerun, --dry-run): " + ", ".join(JOB_NAMES), shown="all"
    )
    results: Path | None = setting(
        None,
        "folder of the runs' full results (gitignored)",
        type=Path,
        shown="results/docs/<git commit>",
    )
    root: Path = setting(Path("."), "the repository", type=Path)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Region:
    """One marked region of a document: its name, the lines of its text, and where it is."""

    path: Path
    name: str
    start: int  # index of the opening marker's line
    end: int  # index of the closing marker's line
    text: str  # the lines between the markers, joined, without the final newline


def documents(root: Path) -> list[Path]:
    """The Markdown files under `root` whose regions are generated."""
    out: list[Path] = []
    for pattern in DOCUMENTS:
        out += sorted(root.glob(pattern))
    return out


def regions(
    path: Path, lines: Sequence[str] | None = None, root: Path | None = None
) -> Iterator[Region]:
    """The marked regions of the file `path` (of `lines`, when given), in order.

    Raises:
        SpecError: for a marker without its partner, nested markers, an unknown name, or (with
            the repository `root`) a region in another document than its own.
    """
    from pyanode.experiments.report_tables import REGIONS

    lines = path.read_text(encoding="utf-8").splitlines() if lines is None else lines
    open_at: tuple[int, str] | None = None
    for i, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if not match:
            continue
        closing, name = match[1] == "/", match[2]
        where = f"{path}:{i + 1}"
        if name not in REGIONS:
            raise SpecError(f"{where}: region {name!r} is not known; known: "
                            f"{', '.join(sorted(REGIONS))}")  # fmt: skip
        if root is not None and path != root / REGIONS[name].document:
            raise SpecError(f"{where}: region {name!r} belongs in {REGIONS[name].document}")
        if not closing and open_at is not None:
            raise SpecError(f"{where}: region {name!r} opens inside region {open_at[1]!r}")
        if closing and (open_at is None or open_at[1] != name):
            raise SpecError(f"{where}: region {name!r} closes without being opened")
        if closing:
            assert open_at is not None
            yield Region(path, name, open_at[0], i, "\n".join(lines[open_at[0] + 1 : i]))
            open_at = None
        else:
            open_at = (i, name)
    if open_at is not None:
        raise SpecError(f"{path}:{open_at[0] + 1}: region {open_at[1]!r} is never closed")


def render(name: str, root: Path) -> str:
    """The generated text of the region `name` from the results committed under `root`."""
    from pyanode.experiments.report_tables import REGIONS, Data

    spec = REGIONS[name]
    return spec.render(Data(root, spec.document)).strip("\n")


@dataclasses.dataclass(frozen=True)
class Stale:
    """A region whose text differs from what its results give."""

    region: Region
    expected: str

    def diff(self) -> str:
        return "\n".join(
            difflib.unified_diff(
                self.region.text.splitlines(),
                self.expected.splitlines(),
                f"{self.region.path} ({self.region.name}, in the file)",
                f"generated from {DATA}",
                lineterm="",
            )
        )


def check(root: Path) -> list[Stale]:
    """Every region of the documents under `root` whose text is not what the committed results
    give (empty: the docs are up to date).

    Raises:
        SpecError: for broken markers, or a region that no document uses.
    """
    stale, used = [], set()
    cache: dict[str, str] = {}
    for path in documents(root):
        for region in regions(path, root=root):
            used.add(region.name)
            if region.name not in cache:
                cache[region.name] = render(region.name, root)
            if region.text != cache[region.name]:
                stale.append(Stale(region, cache[region.name]))
    _check_all_used(used)
    return stale


def _check_all_used(used: set[str]) -> None:
    from pyanode.experiments.report_tables import REGIONS

    unused = sorted(set(REGIONS) - used)
    if unused:
        raise SpecError(f"regions {', '.join(unused)} are generated but no document shows them")


def rewrite(root: Path) -> list[Path]:
    """Rewrite every region of the documents under `root` from the committed results.

    Returns:
        The files that changed.
    """
    from pyanode.experiments.store import atomic_write_text

    changed = []
    cache: dict[str, str] = {}
    for path in documents(root):
        lines = path.read_text(encoding="utf-8").splitlines()
        new = list(lines)
        for region in reversed(list(regions(path, lines, root))):
            if region.name not in cache:
                cache[region.name] = render(region.name, root)
            body = cache[region.name].split("\n") if cache[region.name] else []
            new[region.start + 1 : region.end] = body
        if new != lines:
            atomic_write_text(path, "\n".join(new) + "\n")
            changed.append(path)
    return changed
