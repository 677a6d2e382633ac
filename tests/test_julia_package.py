"""The Julia package PyANODE, checked without Julia: Project.toml, imports, lint and syntax.

`fatou lint julia` (with the repo-root fatou.toml) finds undefined names, wrong call arity and
imports missing from [deps]; tree-sitter-julia finds syntax errors. Both also run on seeded
mistakes here, so that a silently disabled rule would fail a test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pyanode.julia._environment import PYANODE_UUID

ROOT = Path(__file__).resolve().parent.parent
JULIA = ROOT / "julia"
SRC = JULIA / "src"
PROJECT = tomllib.loads((JULIA / "Project.toml").read_text())
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
IMPORT_RE = re.compile(r"^\s*(?:using|import)\s+([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.M)
BASE_MODULES = {"Base", "Core"}


def imported_packages(path: Path) -> dict[str, str]:
    """Top-level package name -> the rest of the line, for every using/import in `path`."""
    return {m.group(1): m.group(2) for m in IMPORT_RE.finditer(path.read_text())}


def tool(name: str) -> str:
    """The executable `name` beside this Python (the venv) or on PATH; skips if missing."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[lint]')")
    return found


def test_project_identity():
    assert PROJECT["name"] == "PyANODE"
    assert PROJECT["uuid"] == PYANODE_UUID
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"])
    assert not (JULIA / "Manifest.toml").exists(), "no Manifest.toml is committed"


def test_every_dependency_has_a_valid_uuid_and_compat():
    from juliapkg.compat import Compat

    deps = PROJECT["deps"] | PROJECT.get("weakdeps", {})
    extras = PROJECT.get("extras", {})
    everything = deps | extras
    for name, uuid in everything.items():
        assert UUID_RE.match(uuid), f"{name} has a malformed uuid {uuid!r}"
    assert len(set(everything.values())) == len(everything), "two packages share a uuid"
    compat = PROJECT["compat"]
    missing = sorted(set(everything) - set(compat))
    assert not missing, f"packages without a [compat] entry: {missing}"
    unknown = sorted(set(compat) - set(everything) - {"julia"})
    assert not unknown, f"[compat] entries for packages that are not dependencies: {unknown}"
    for name, bound in compat.items():
        assert Compat.parse(bound), f"[compat] {name} = {bound!r} does not parse"
    assert Compat.parse(compat["julia"]) == Compat.parse("1.10")
    assert set(PROJECT["targets"]["test"]) <= set(extras)


def test_every_import_is_a_dependency_and_every_dependency_is_imported():
    deps = set(PROJECT["deps"])
    imported: set[str] = set()
    for path in sorted(SRC.glob("*.jl")):
        for package, rest in imported_packages(path).items():
            assert rest.lstrip().startswith(":"), (
                f"{path.name}: `using {package}` without a name list; write "
                f"`using {package}: {package}, name` so that fatou can check the names"
            )
            imported.add(package)
    undeclared = sorted(imported - deps - BASE_MODULES)
    assert not undeclared, f"imported but not in [deps]: {undeclared}"
    unused = sorted(deps - imported)
    assert not unused, f"in [deps] but never imported by src/: {unused}"
    test_imports = set(imported_packages(JULIA / "test" / "runtests.jl"))
    allowed = deps | set(PROJECT["extras"]) | {"PyANODE"}
    assert test_imports <= allowed, f"test imports outside deps/extras: {test_imports - allowed}"


def test_every_source_file_is_included_once():
    module = (SRC / "PyANODE.jl").read_text()
    included = re.findall(r'^include\("([^"]+)"\)', module, re.M)
    assert len(included) == len(set(included))
    files = sorted(p.name for p in SRC.glob("*.jl") if p.name != "PyANODE.jl")
    assert sorted(included) == files


def test_every_export_is_defined():
    module = (SRC / "PyANODE.jl").read_text()
    exported = {
        name.strip()
        for line in re.findall(r"^export (.+)$", module, re.M)
        for name in line.split(",")
    }
    source = "\n".join(p.read_text() for p in SRC.glob("*.jl"))
    for name in sorted(exported):
        escaped = re.escape(name)
        defined = re.search(
            rf"^(?:function|(?:mutable )?struct|abstract type)\s+{escaped}(?![\w!])"
            rf"|^{escaped}\(.*\)\s*=",
            source,
            re.M,
        )
        assert defined, f"{name} is exported but not defined in src/"


def test_juliapkg_json():
    from juliapkg.compat import Compat
    from juliapkg.deps import PkgSpec

    data = json.loads((ROOT / "pyanode" / "juliapkg.json").read_text())
    assert set(data) <= {"julia", "packages"}
    assert Compat.parse(data["julia"]) == Compat.parse(PROJECT["compat"]["julia"])
    for name, spec in data.get("packages", {}).items():
        PkgSpec(name, **spec)  # raises on a malformed entry


def test_wheel_ships_the_julia_package_where_status_looks():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force["julia"] == "pyanode/_julia"  # julia_package_dir() looks there in a wheel


def test_fatou_lint_is_clean():
    fatou = tool("fatou")
    done = subprocess.run(
        [fatou, "lint", "julia"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "clean" in done.stdout + done.stderr


def test_fatou_format_is_clean():
    fatou = tool("fatou")
    done = subprocess.run(
        [fatou, "format", "--check", "julia"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_fatou_config_catches_seeded_mistakes(tmp_path):
    """Typos, wrong arity and an undeclared import are found (the rules are really on)."""
    fatou = tool("fatou")
    shutil.copytree(JULIA, tmp_path / "julia")
    shutil.copy(ROOT / "fatou.toml", tmp_path / "fatou.toml")
    src = tmp_path / "julia" / "src"

    def mutate(name: str, old: str, new: str) -> None:
        path = src / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    mutate("node.jl", "record_forward!(counter, start)", "record_forwrd!(counter, start)")
    mutate("inference.jl", "raw = logits(h, X)", "raw = logits(h, X, 2)")
    mutate("PyANODE.jl", "using Zygote: Zygote", "using Zygote: Zygote\nusing Statistics: mean")
    done = subprocess.run(
        [fatou, "lint", "julia"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    report = done.stdout + done.stderr
    assert done.returncode == 1
    assert "undefined-name" in report and "record_forwrd!" in report
    assert "call-arity" in report and "no method of `logits` takes 3 positional" in report
    assert "unresolved-import" in report and "`Statistics` is not a dependency" in report


def test_tree_sitter_syntax_scan(tmp_path):
    pytest.importorskip("tree_sitter_julia")
    script = ROOT / "tools" / "check_julia_syntax.py"
    done = subprocess.run(
        [sys.executable, str(script), "julia"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    n_files = len(list(JULIA.rglob("*.jl")))
    assert f"checked {n_files} Julia file(s): 0 syntax error(s)" in done.stderr
    broken = tmp_path / "broken.jl"
    broken.write_text("x = 1\nfunction f(x)\n    x + 1\n")  # the `end` is missing
    done = subprocess.run(
        [sys.executable, str(script), str(broken)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert f"{broken}:2:1: syntax error near 'function f(x)'" in done.stdout


def julia_constant_strings(name: str) -> list[str]:
    """The string keys (of a Dict) or items (of a tuple) of `const name = ...` in julia/src."""
    source = "\n".join(p.read_text() for p in sorted(SRC.glob("*.jl")))
    match = re.search(rf"^const {name} = [^(]*\(", source, re.M)
    assert match, f"const {name} not found in julia/src"
    depth, end = 1, match.end()
    while depth:  # to the parenthesis that closes the first one
        depth += {"(": 1, ")": -1}.get(source[end], 0)
        end += 1
    body = source[match.end() : end]
    keys = re.findall(r'"([\w-]+)"\s*=>', body)
    return keys or re.findall(r'"([\w-]+)"', body)


def test_the_julia_name_tables_are_pyanodes():
    """The names PyANODE.jl maps to objects are pyanode's table of names (`pyanode._names`):
    solvers (adaptive or not), gradient methods of the Julia backend, model kinds, activations
    and losses (`auto` is resolved in Python)."""
    from pyanode import _names

    adaptive = {name for name, (_, is_adaptive) in _names.SOLVERS.items() if is_adaptive}
    assert set(julia_constant_strings("ADAPTIVE_SOLVERS")) == adaptive
    assert set(julia_constant_strings("FIXED_STEP_SOLVERS")) == set(_names.SOLVERS) - adaptive
    assert julia_constant_strings("GRADIENTS") == list(_names.gradients_of("julia"))
    assert set(julia_constant_strings("BLOCKS")) == set(_names.MODEL_KINDS)
    assert set(julia_constant_strings("ACTIVATIONS")) == set(_names.ACTIVATIONS)
    assert set(julia_constant_strings("LOSSES")) == set(_names.LOSSES) - {"auto"}
