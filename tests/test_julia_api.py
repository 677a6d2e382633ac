"""Every external Julia name and keyword that julia/ uses is in julia/external_api.toml, the
table read from the packages' sources by tools/julia_api.py, and julia/Project.toml lets users
resolve only versions at or above those read.

Without Julia this is the check that an `import`, a constructor, a keyword of `solve` or an
arity of an external function exists in the version PyANODE was checked against: fatou checks
PyANODE's own names only, and an unknown keyword often passes silently in Julia (a controller's
options, `solve`'s keywords are checked only at run time).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest.importorskip("tree_sitter_julia")

ROOT = Path(__file__).resolve().parent.parent
JULIA = ROOT / "julia"
PROJECT = tomllib.loads((JULIA / "Project.toml").read_text())
STDLIB = {"Random", "Test"}  # versioned with Julia itself


sys.path.insert(0, str(ROOT / "tools"))
import julia_api as api  # noqa: E402

TABLE = tomllib.loads(api.TABLE.read_text())


def test_every_external_name_and_keyword_is_in_the_table():
    found = api.uses(api.SOURCES)
    assert len(found) > 60
    assert api.problems(found, api.load_table()) == []


def test_the_table_lists_exactly_what_julia_uses():
    used = {(use.package, use.name) for use in api.uses(api.SOURCES)}
    assert {(row["package"], row["name"]) for row in TABLE["names"]} == used


def mutated_problems(tmp_path: Path, edits: list[tuple[str, str, str]]) -> list[str]:
    """The check's report on a copy of julia/src with the `(file, old, new)` edits."""
    src = tmp_path / "src"
    shutil.copytree(JULIA / "src", src)
    for name, old, new in edits:
        path = src / name
        content = path.read_text()
        assert old in content, f"{old!r} not in {name}"
        path.write_text(content.replace(old, new, 1))
    return api.problems(api.uses([src]), api.load_table())


def test_the_check_catches_seeded_mistakes(tmp_path):
    """A misspelt keyword of `solve` and of the step controller (which would be ignored
    silently), a keyword splat into `solve`, an extra argument to `Dense`, a method of
    `LuxCore.initialparameters` that LuxCore never calls, and a name the package lacks."""
    report = mutated_problems(
        tmp_path,
        [
            ("solvers.jl", "save_end = true,", "save_ends = true,"),
            ("solvers.jl", "qmax_first_step = 10.0f0", "qmax_firststep = 10.0f0"),
            ("solvers.jl", "maxiters = s.maxiters,", "maxiters = s.maxiters,\n        extra...,"),
            ("fields.jl", "Dense(hidden => out_dims)", "Dense(hidden => out_dims, identity, 1, 2)"),
            ("galerkin.jl", "(rng::AbstractRNG, l::GalerkinDense)", "(rng, l::GalerkinDense, x)"),
            ("PyANODE.jl", "ODEFunction, ODEProblem,", "ODEFunction, ODEProblem, SDEProblemX,"),
        ],
    )
    text = "\n".join(report)
    assert "SciMLBase.solve has no keyword `save_ends`" in text
    assert "OrdinaryDiffEqCore.IController has no keyword `qmax_firststep`" in text
    assert "keywords splatted into SciMLBase.solve cannot be checked" in text
    assert "Lux.Dense takes 1-3 positional arguments, not 4" in text
    assert "LuxCore.initialparameters takes 2 positional arguments, not 3" in text
    assert "SciMLBase.SDEProblemX is not in external_api.toml" in text
    assert len(report) == 6, text


def test_the_arity_notation_round_trips():
    for ranges in ([[1, 1]], [[0, 3]], [[2, -1]], [[0, 0], [3, 3]], [[0, 1], [4, 4]]):
        assert [list(r) for r in api.parse_arity(api.format_arity(ranges))] == ranges
    assert api.merge([(0, 0), (1, 2), (4, 4), (3, -1)]) == [[0, -1]]
    assert api.merge([(1, 1), (3, 3)]) == [[1, 1], [3, 3]]


def lowest(bound: str):
    from juliapkg.compat import Compat

    return min(clause.lo for clause in Compat.parse(bound).clauses)


def test_compat_starts_at_the_versions_read():
    """Users resolve each package at or above the version its API was read from, and never
    below: the lowest version `[compat]` allows is exactly that version."""
    from juliapkg.compat import Version

    compat = PROJECT["compat"]
    everything = set(PROJECT["deps"]) | set(PROJECT.get("extras", {}))
    read = TABLE["packages"]
    for name in sorted(everything - STDLIB):
        assert name in read, f"{name} is a dependency but its API was not read"
        assert lowest(compat[name]) == Version.parse(read[name]["version"]), name


def test_the_versions_read_are_mutually_compatible():
    """Each package read admits the versions of the others read (its own [compat]), and
    PyANODE's Julia bound admits the Julia each needs."""
    from juliapkg.compat import Compat, Version

    read = TABLE["packages"]
    for name, info in read.items():
        for dep, bound in info["compat"].items():
            version = Version.parse(read[dep]["version"])
            assert version in Compat.parse(bound), f"{name} needs {dep} {bound}, read {version}"
        if info["julia"]:
            assert lowest(info["julia"]) <= lowest(PROJECT["compat"]["julia"]), name


def test_every_row_says_where_it_was_read():
    read = TABLE["packages"]
    for row in TABLE["names"]:
        assert row["package"] in read or row["package"] in STDLIB, row
        assert row["kind"] in ("module", "function", "type", "macro", "constant", "reexport")
        assert row["kind"] == "module" or row["source"], row
    for info in read.values():
        assert len(info["commit"]) == 40 and info["version"]


def test_the_docs_quote_the_versions_read():
    docs = (ROOT / "docs" / "julia.md").read_text()
    assert api.versions_table() in docs
