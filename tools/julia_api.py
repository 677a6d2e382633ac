"""The external Julia API that the Julia package PyANODE (julia/) uses, read from the packages'
own sources, and a check of julia/ against it.

Usage:

    python tools/julia_api.py generate --mirrors DIR   # write julia/external_api.toml
    python tools/julia_api.py check [PATH ...]         # default: julia/src julia/test

`generate` collects every external name julia/ uses (imported with `using P: name`, or written
`P.name`), reads the package's source at the version in `PACKAGES` from a git mirror of its
repository (`DIR/<owner>+<name>/repo`, read with `git show <commit>:<path>`), finds the
definitions of the name with tree-sitter-julia and writes its kind, the numbers of positional
arguments its methods accept and its keyword names, with the version and commit read. A few
names need a rule: `RULES` says where their methods or keywords really live (e.g. `solve`'s
method for ODE problems is in DiffEqBase, and the keywords it passes on are OrdinaryDiffEq's),
and the standard libraries, whose repository is too large to mirror, are in `STDLIB`, read by
hand.

`check` parses julia/ and reports every external name missing from the table, every call of an
external function with a number of positional arguments or a keyword that no method accepts,
and every keyword splat (`f(x; kw...)`) into an external function, which could not be checked.
tests/test_julia_api.py runs it in CI, so an unknown name or keyword cannot land.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from check_julia_syntax import julia_files, julia_parser

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "julia" / "external_api.toml"
SOURCES = (ROOT / "julia" / "src", ROOT / "julia" / "test")
OWN = {"PyANODE", "Base", "Core"}  # modules whose names are not external


@dataclass(frozen=True)
class Package:
    """Where a package's source was read: `repository` at `ref` (a tag, or the first commit that
    carries `version` when the version has no tag), the package in the folder `root`."""

    repository: str
    version: str
    ref: str
    root: str = ""


ODE = "SciML/OrdinaryDiffEq.jl"
ODE_COMMIT = "202f5fda903ae569ce5eef03c4f6ab7318c8e93c"  # OrdinaryDiffEq 7.7.0, Core 4.15.0
PACKAGES = {
    "Lux": Package("LuxDL/Lux.jl", "1.31.4", "v1.31.4"),
    "LuxCore": Package("LuxDL/Lux.jl", "1.5.3", "LuxCore-v1.5.3", "lib/LuxCore"),
    "MLDataDevices": Package(
        "LuxDL/Lux.jl", "1.17.10", "MLDataDevices-v1.17.10", "lib/MLDataDevices"
    ),
    "OrdinaryDiffEqCore": Package(ODE, "4.15.0", ODE_COMMIT, "lib/OrdinaryDiffEqCore"),
    "OrdinaryDiffEqTsit5": Package(
        ODE, "2.1.3", "OrdinaryDiffEqTsit5-v2.1.3", "lib/OrdinaryDiffEqTsit5"
    ),
    "OrdinaryDiffEqLowOrderRK": Package(
        ODE, "2.2.3", "OrdinaryDiffEqLowOrderRK-v2.2.3", "lib/OrdinaryDiffEqLowOrderRK"
    ),
    "DiffEqBase": Package(ODE, "7.16.0", ODE_COMMIT, "lib/DiffEqBase"),
    "SciMLBase": Package(
        "SciML/SciMLBase.jl", "3.49.2", "26b80c91cdef6911efb424fc21fac2cd54081129"
    ),
    "SciMLSensitivity": Package(
        "SciML/SciMLSensitivity.jl", "7.112.3", "31f993e5fd66707810eef2d805a87bc866196a05"
    ),
    "ComponentArrays": Package("SciML/ComponentArrays.jl", "0.15.45", "v0.15.45"),
    "Optimisers": Package("FluxML/Optimisers.jl", "0.4.8", "v0.4.8"),
    "Zygote": Package("FluxML/Zygote.jl", "0.7.12", "v0.7.12"),
    "NNlib": Package("FluxML/NNlib.jl", "0.9.36", "v0.9.36"),
    "ChainRulesCore": Package("JuliaDiff/ChainRulesCore.jl", "1.26.1", "v1.26.1"),
    # 1.3 needs Julia 1.12; 1.2.1 is the newest for PyANODE's Julia 1.10 (same macros)
    "PrecompileTools": Package("JuliaLang/PrecompileTools.jl", "1.2.1", "v1.2.1"),
    "Aqua": Package("JuliaTesting/Aqua.jl", "0.8.16", "v0.8.16"),
    "ExplicitImports": Package("JuliaTesting/ExplicitImports.jl", "1.15.0", "v1.15.0"),
}


@dataclass(frozen=True)
class Rule:
    """Where a name's methods and keywords live when not (only) in its own package.

    Arguments:
        methods_in: the package whose methods of the name apply (`solve` is SciMLBase's
            binding, its method for ODE problems DiffEqBase's).
        keywords_from: (package, function) pairs whose keywords the name's keyword arguments
            reach (a `kwargs...` passed on).
        keyword_symbols_in: (package, function): the name takes the keywords read in that
            function as `Val(:name)` (a controller's options, kept as a NamedTuple).
        keywords_within: (package, constant): only keywords listed in that tuple are accepted
            (SciMLBase's `allowedkeywords`, which `solve` enforces).
    """

    methods_in: str | None = None
    keywords_from: tuple[tuple[str, str], ...] = ()
    keyword_symbols_in: tuple[str, str] | None = None
    keywords_within: tuple[str, str] | None = None


RULES = {
    ("SciMLBase", "solve"): Rule(
        methods_in="DiffEqBase",
        keywords_from=(("OrdinaryDiffEqCore", "_ode_init"),),
        keywords_within=("SciMLBase", "allowedkeywords"),
    ),
    ("OrdinaryDiffEqCore", "IController"): Rule(
        keyword_symbols_in=("OrdinaryDiffEqCore", "resolve_basic")
    ),
    ("Aqua", "test_persistent_tasks"): Rule(keywords_from=(("Aqua", "has_persistent_tasks"),)),
}

# Julia's standard libraries ship with Julia (PyANODE's compat: julia 1.10), and JuliaLang/julia
# is too large to mirror: these rows were read by hand from the files named.
STDLIB_SOURCE = "JuliaLang/julia stdlib, read by hand"
STDLIB = [
    {
        "package": "Random",
        "name": "AbstractRNG",
        "kind": "type",
        "source": "stdlib/Random/src/Random.jl",
    },
    {
        "package": "Random",
        "name": "Xoshiro",
        "kind": "type",
        "positional": "0-1, 4",
        "source": "stdlib/Random/src/Xoshiro.jl @ 01cf45b5 (Xoshiro(seed=nothing), "
        "Xoshiro(s0, s1, s2, s3))",
    },
    {
        "package": "Random",
        "name": "rand",
        "kind": "function",
        "positional": "0+",
        "source": "stdlib/Random/src/Random.jl @ 016e991d (rand([rng], [S], [dims...]))",
    },
    {
        "package": "Random",
        "name": "randperm",
        "kind": "function",
        "positional": "1-2",
        "source": "stdlib/Random/src/misc.jl @ 01982d01 (randperm([rng], n))",
    },
    *(
        {"package": "Test", "name": name, "kind": "macro", "source": "stdlib/Test/src/Test.jl"}
        for name in ("@test", "@test_throws", "@testset")
    ),
]

# --- parsing Julia -------------------------------------------------------------------------------


def text(node) -> str:
    return node.text.decode("utf8")


def walk(node) -> Iterator:
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def named(node) -> list:
    """The children that are not punctuation."""
    return [c for c in node.children if c.is_named and c.type not in ("comment", "line_comment")]


def callee_path(node) -> list[str]:
    """`["P", "f"]` for `P.f`, `["f"]` for `f` or `f{T}`; [] for anything else."""
    if node.type == "identifier":
        return [text(node)]
    if node.type == "parametrized_type_expression":
        return callee_path(named(node)[0])
    if node.type == "field_expression":
        parts = named(node)
        left = callee_path(parts[0])
        return [*left, text(parts[-1])] if left else []
    return []


@dataclass
class Arguments:
    """The arguments of a call or the parameters of a method."""

    required: int = 0
    optional: int = 0
    varargs: bool = False
    keywords: list[str] = field(default_factory=list)
    keyword_splat: bool = False


def first_identifier(node) -> str | None:
    for child in walk(node):
        if child.type == "identifier":
            return text(child)
    return None


def arguments(argument_list, definition: bool) -> Arguments:
    """Split an `argument_list` at its `;` into positional arguments (required, with a default,
    splatted) and keywords (named, splatted). Before the `;`, `k = v` is a positional parameter
    with a default in a method `definition`, and a keyword in a call."""
    out = Arguments()
    after_semicolon = False
    for child in argument_list.children:
        if child.type == ";":
            after_semicolon = True
            continue
        if not child.is_named or child.type in ("comment", "line_comment"):
            continue
        if child.type == "splat_expression":
            if after_semicolon:
                out.keyword_splat = True
            else:
                out.varargs = True
        elif after_semicolon or (child.type == "named_argument" and not definition):
            name = first_identifier(child)
            if name:
                out.keywords.append(name)
        elif child.type == "named_argument":
            out.optional += 1
        else:
            out.required += 1
    return out


def is_signature(call) -> bool:
    """Whether a `call_expression` is the left side of a method definition."""
    node = call
    while node.parent is not None and node.parent.type in ("where_expression", "typed_expression"):
        node = node.parent
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "signature":
        return True
    return parent.type == "assignment" and parent.children[0] == node


def signature_call(node):
    """The call_expression of a function definition's signature (or a short form's left side)."""
    for child in walk(node):
        if child.type == "call_expression":
            return child
    return None


# --- reading the packages -----------------------------------------------------------------------


@dataclass
class Found:
    """What the definitions of a name in a package say."""

    kinds: set[str] = field(default_factory=set)
    arities: list[tuple[int, int]] = field(default_factory=list)  # (min, max); max -1: any
    keywords: set[str] = field(default_factory=set)
    open_keywords: bool = False
    places: list[str] = field(default_factory=list)
    alias_of: str | None = None


class Source:
    """A package's Julia files at its ref, parsed on demand."""

    def __init__(self, mirrors: Path, name: str):
        self.name = name
        self.package = PACKAGES[name]
        self.git = mirrors / self.package.repository.replace("/", "+") / "repo"
        self.commit = self._git("rev-parse", f"{self.package.ref}^{{commit}}").strip()
        src = f"{self.package.root}/src".lstrip("/")
        files = self._git("ls-tree", "-r", "--name-only", self.commit, "--", src).split()
        self.files = [f for f in files if f.endswith(".jl")]
        self._trees: dict[str, object] = {}

    def _git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={self.git}", *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def project(self) -> dict:
        path = f"{self.package.root}/Project.toml".lstrip("/")
        return tomllib.loads(self._git("show", f"{self.commit}:{path}"))

    def trees(self) -> Iterator[tuple[str, object]]:
        for path in self.files:
            if path not in self._trees:
                source = self._git("show", f"{self.commit}:{path}").encode()
                self._trees[path] = PARSER.parse(source).root_node
            yield path, self._trees[path]

    def find(self, name: str) -> Found:
        """Every definition of `name` in the package: methods, structs, macros, aliases."""
        found = Found()
        bare = name.lstrip("@")
        for path, root in self.trees():
            for node in walk(root):
                where = (
                    f"{path.removeprefix(self.package.root).lstrip('/')}:{node.start_point[0] + 1}"
                )
                if node.type == "macro_definition" and name.startswith("@"):
                    call = signature_call(node)
                    if call is not None and callee_path(named(call)[0])[-1:] == [bare]:
                        found.kinds.add("macro")
                        found.places.append(where)
                elif node.type in ("function_definition", "assignment") and not name.startswith(
                    "@"
                ):
                    self._method(node, name, found, where)
                elif node.type == "struct_definition":
                    self._struct(node, name, found, where)
                elif node.type == "abstract_definition":
                    head = next(c for c in node.children if c.type == "type_head")
                    if first_identifier(head) == name:
                        found.kinds.add("type")
                        found.places.append(where)
                elif node.type == "const_statement":
                    self._alias(node, name, found, where)
        return found

    @staticmethod
    def _method(node, name: str, found: Found, where: str) -> None:
        if node.type == "function_definition":
            call = signature_call(named(node)[0]) if named(node) else None
        else:  # `f(x) = ...`: the left side is a call (maybe under `where` or `::T`)
            left = node.children[0]
            while left.type in ("where_expression", "typed_expression"):
                left = left.children[0]
            call = left if left.type == "call_expression" else None
        if call is None or callee_path(named(call)[0])[-1:] != [name]:
            return
        params = arguments(named(call)[-1], definition=True)
        found.kinds.add("function")
        low = params.required
        found.arities.append((low, -1 if params.varargs else low + params.optional))
        found.keywords.update(params.keywords)
        found.open_keywords |= params.keyword_splat
        found.places.append(where)

    def _struct(self, node, name: str, found: Found, where: str) -> None:
        head = next(c for c in node.children if c.type == "type_head")
        if first_identifier(head) != name:
            return
        body = [c for c in named(node) if c.type != "type_head"]
        inner = [
            c
            for c in body
            if c.type == "function_definition"
            or (c.type == "assignment" and c.children[0].type == "call_expression")
        ]
        fields = []
        for child in body:
            if child.type in ("identifier", "typed_expression"):
                fields.append(first_identifier(child))
            elif child.type == "assignment" and child not in inner:
                fields.append(first_identifier(child.children[0]))
        found.kinds.add("type")
        found.places.append(where)
        for method in inner:
            self._method(method, name, found, where)
        macro = self._macro_around(node)
        n = len(fields)
        if macro == "@kwdef":  # f(; fields...) and f(fields...)
            found.arities += [(0, 0), (n, n)]
            found.keywords.update(fields)
        elif macro == "@def":  # Optimisers: f(first, rest = defaults...) and f(; fields...)
            found.arities += [(0, 0), (1, n)]
            found.keywords.update(fields)
        elif not inner:  # the default constructor
            found.arities.append((n, n))

    @staticmethod
    def _macro_around(node) -> str | None:
        parent = node.parent
        while parent is not None and parent.type == "macro_argument_list":
            parent = parent.parent
        if parent is not None and parent.type == "macrocall_expression":
            return next(text(c) for c in parent.children if c.type == "macro_identifier")
        return None

    @staticmethod
    def _alias(node, name: str, found: Found, where: str) -> None:
        assignment = next((c for c in named(node) if c.type == "assignment"), None)
        if assignment is None or text(assignment.children[0]) != name:
            return
        value = assignment.children[-1]
        if value.type == "identifier":
            found.alias_of = text(value)
            found.places.append(where)
        else:
            found.kinds.add("constant")
            found.places.append(where)

    def imported(self, name: str) -> bool:
        """Whether the package's module binds `name` by `using`/`import` (a re-export)."""
        pattern = re.compile(rf"(?:using|import)\s+[\w.]+\s*:[^\n]*\b{re.escape(name)}\b")
        main = f"{self.package.root}/src/{self.name}.jl".lstrip("/")
        return bool(pattern.search(self._git("show", f"{self.commit}:{main}")))

    def function_keywords(self, function: str) -> set[str]:
        return self.find(function).keywords

    def val_symbols(self, function: str) -> set[str]:
        symbols: set[str] = set()
        for _, root in self.trees():
            for node in walk(root):
                if node.type != "function_definition":
                    continue
                call = signature_call(named(node)[0])
                if call is not None and callee_path(named(call)[0])[-1:] == [function]:
                    symbols.update(re.findall(r"Val\(:(\w+)\)", text(node)))
        return symbols

    def tuple_symbols(self, constant: str) -> set[str]:
        for _, root in self.trees():
            for node in walk(root):
                if node.type == "const_statement" and re.match(
                    rf"const\s+{re.escape(constant)}\s*=", text(node)
                ):
                    return set(re.findall(r":(\w+)", text(node)))
        raise LookupError(f"{self.name} defines no constant {constant}")


def merge(arities: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Sorted, merged [min, max] ranges of positional counts (max -1: no limit)."""
    out: list[list[int]] = []
    for low, high in sorted(set(arities)):
        if out and (out[-1][1] == -1 or low <= out[-1][1] + 1):
            if out[-1][1] != -1:
                out[-1][1] = -1 if high == -1 else max(out[-1][1], high)
            continue
        out.append([low, high])
    return out


def describe(mirrors: Path, package: str, name: str, sources: dict[str, Source]) -> dict:
    """The table row of `package.name`."""

    def source(pkg: str) -> Source:
        if pkg not in sources:
            sources[pkg] = Source(mirrors, pkg)
        return sources[pkg]

    rule = RULES.get((package, name), Rule())
    own = source(package)
    if name == package:
        return {"package": package, "name": name, "kind": "module"}
    found = own.find(name)
    while found.alias_of is not None:
        found = own.find(found.alias_of)
    if not (found.kinds or own.imported(name)):
        raise LookupError(f"{package} {PACKAGES[package].version} has no {name}")
    methods = source(rule.methods_in).find(name) if rule.methods_in else found
    keywords = set(methods.keywords)
    for pkg, function in rule.keywords_from:
        keywords |= source(pkg).function_keywords(function)
    if rule.keyword_symbols_in:
        keywords |= source(rule.keyword_symbols_in[0]).val_symbols(rule.keyword_symbols_in[1])
    open_keywords = methods.open_keywords and not keywords
    if rule.keywords_within:
        keywords &= source(rule.keywords_within[0]).tuple_symbols(rule.keywords_within[1])
    kind = (
        next(k for k in ("macro", "type", "function", "constant") if k in found.kinds)
        if found.kinds
        else "reexport"
    )
    row: dict = {"package": package, "name": name, "kind": kind}
    if methods.arities:
        row["positional"] = format_arity(merge(methods.arities))
    if keywords:
        row["keywords"] = sorted(keywords)
    if open_keywords:
        row["open_keywords"] = True
    places = methods.places if rule.methods_in else found.places
    origin = f"{rule.methods_in}: " if rule.methods_in else ""
    row["source"] = origin + ", ".join(places[:6]) + (" ..." if len(places) > 6 else "")
    also = [f"{pkg}.{function}" for pkg, function in rule.keywords_from]
    if rule.keyword_symbols_in:
        also.append("{}.{} (Val(:name))".format(*rule.keyword_symbols_in))
    if also or rule.keywords_within:
        row["keywords_source"] = "; ".join(
            ([f"also the keywords of {', '.join(also)}"] if also else [])
            + (
                ["only those in {}.{}".format(*rule.keywords_within)]
                if rule.keywords_within
                else []
            )
        )
    return row


def format_arity(ranges: list[list[int]]) -> str:
    """`"1"`, `"0-3"`, `"2+"` (2 or more), `"0, 3"` (0 or 3)."""
    parts = []
    for low, high in ranges:
        parts.append(str(low) if low == high else f"{low}+" if high == -1 else f"{low}-{high}")
    return ", ".join(parts)


def parse_arity(value: str) -> list[tuple[int, int]]:
    """The inverse of `format_arity`."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if part.endswith("+"):
            out.append((int(part[:-1]), -1))
        elif "-" in part:
            low, high = part.split("-")
            out.append((int(low), int(high)))
        else:
            out.append((int(part), int(part)))
    return out


# --- what julia/ uses -----------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """One external name used at `place`: imported, or called with these arguments."""

    package: str
    name: str
    place: str
    call: Arguments | None = None


def uses(paths: Iterable[Path]) -> list[Use]:
    """Every external name used in the Julia files under `paths`. The files of one folder are
    one module (a package's `include`d files share the imports of its main file)."""
    found: list[Use] = []
    folders: dict[Path, list[Path]] = {}
    for path in julia_files(paths):
        folders.setdefault(path.parent, []).append(path)
    for files in folders.values():
        trees = [(path, PARSER.parse(path.read_bytes()).root_node) for path in files]
        imports: dict[str, str] = {}
        for path, root in trees:
            for node in walk(root):
                if node.type in ("using_statement", "import_statement"):
                    found += imported(node, path, imports)
        modules = {name for name, package in imports.items() if name == package} | set(PACKAGES)
        for path, root in trees:
            found += used(root, path, imports, modules)
    return found


def imported(statement, path: Path, imports: dict[str, str]) -> list[Use]:
    """The names a `using P: a, b` statement brings in (recorded in `imports`)."""
    found = []
    for selected in (c for c in statement.children if c.type == "selected_import"):
        parts = [c for c in named(selected) if c.type in ("identifier", "macro_identifier")]
        package = text(parts[0])
        for part in parts[1:]:
            imports[text(part)] = package
            if package not in OWN:
                found.append(Use(package, text(part), place(path, part)))
    return found


def used(root, path: Path, imports: dict[str, str], modules: set[str]) -> list[Use]:
    """The external names called or referred to as `P.name` in one file."""
    found = []
    for node in walk(root):
        if node.type in ("call_expression", "broadcast_call_expression"):
            target = resolve(callee_path(named(node)[0]), imports, modules)
            if target is not None:
                call = arguments(named(node)[-1], definition=is_signature(node))
                found.append(Use(*target, place(path, node), call))
        elif node.type == "field_expression" and node.parent.type not in (
            "field_expression",
            "call_expression",
            "broadcast_call_expression",
        ):
            target = resolve(callee_path(node), imports, modules)
            if target is not None and len(callee_path(node)) > 1:
                found.append(Use(*target, place(path, node)))
    return found


def resolve(path: list[str], imports: dict[str, str], modules: set[str]) -> tuple[str, str] | None:
    """(package, name) of an external name written as `path`, or None."""
    if len(path) == 1:
        package = imports.get(path[0])
        return None if package is None or package in OWN else (package, path[0])
    if len(path) >= 2 and path[-2] in modules and path[-2] not in OWN:
        return (imports.get(path[-2], path[-2]), path[-1])
    return None


def place(path: Path, node) -> str:
    try:
        shown = path.resolve().relative_to(ROOT)
    except ValueError:
        shown = path
    return f"{shown}:{node.start_point[0] + 1}"


# --- the check ------------------------------------------------------------------------------


def load_table(path: Path = TABLE) -> dict[tuple[str, str], dict]:
    data = tomllib.loads(path.read_text())
    return {(row["package"], row["name"]): row for row in data["names"]}


def accepts(row: dict, n: int, at_least: bool) -> bool:
    """Whether some method of `row` takes `n` positional arguments (or `n` or more)."""
    if "positional" not in row:
        return row["kind"] in ("type", "reexport")  # a type without a constructor we read
    ranges = parse_arity(row["positional"])
    return any(
        (high == -1 or (at_least and high >= n) or n <= high) and (at_least or n >= low)
        for low, high in ranges
    )


def problems(found: Iterable[Use], table: dict[tuple[str, str], dict]) -> list[str]:
    """What in `found` the table does not allow, one line each."""
    out = []
    for use in found:
        row = table.get((use.package, use.name))
        if row is None:
            out.append(f"{use.place}: {use.package}.{use.name} is not in {TABLE.name}")
            continue
        call = use.call
        if call is None or row["kind"] == "macro":
            continue
        n = call.required + call.optional
        if not accepts(row, n, call.varargs):
            out.append(
                f"{use.place}: {use.package}.{use.name} takes {row.get('positional')} "
                f"positional arguments, not {n}{' or more' if call.varargs else ''}"
            )
        allowed = set(row.get("keywords", ()))
        for keyword in call.keywords:
            if keyword not in allowed and not row.get("open_keywords"):
                out.append(
                    f"{use.place}: {use.package}.{use.name} has no keyword `{keyword}` "
                    f"(it has: {', '.join(sorted(allowed)) or 'none'})"
                )
        if call.keyword_splat and not row.get("open_keywords"):
            out.append(
                f"{use.place}: keywords splatted into {use.package}.{use.name} cannot be "
                "checked; pass them by name"
            )
    return out


def generate(mirrors: Path, out: Path = TABLE) -> int:
    names = sorted({(use.package, use.name) for use in uses(SOURCES)})
    sources: dict[str, Source] = {}
    rows = [
        describe(mirrors, package, name, sources) for package, name in names if package in PACKAGES
    ]
    rows += [
        dict(row, source=f"{STDLIB_SOURCE}: {row['source']}")
        for row in STDLIB
        if (row["package"], row["name"]) in names
    ]
    unknown = sorted(set(names) - {(r["package"], r["name"]) for r in rows})
    if unknown:
        raise SystemExit(f"julia_api: no source configured for {unknown}")
    packages = {}
    for name in sorted(PACKAGES):
        source = sources.get(name) or Source(mirrors, name)
        project = source.project()
        if project.get("version") != PACKAGES[name].version:
            raise SystemExit(
                f"julia_api: {name} at {PACKAGES[name].ref} is version {project.get('version')}, "
                f"not {PACKAGES[name].version}"
            )
        compat = project.get("compat", {})
        packages[name] = {
            "version": PACKAGES[name].version,
            "repository": PACKAGES[name].repository,
            "ref": PACKAGES[name].ref,
            "commit": source.commit,
            "root": PACKAGES[name].root or ".",
            "julia": compat.get("julia", ""),
            # its bounds on the other packages read here: the versions read must satisfy them
            "compat": {dep: bound for dep, bound in compat.items() if dep in PACKAGES},
        }
    out.write_text(render(packages, rows))
    print(f"wrote {out}: {len(rows)} names from {len(packages)} packages", file=sys.stderr)
    return 0


HEADER = """\
# The external Julia API that julia/ uses, read from each package's source at the version below.
# Generated by `python tools/julia_api.py generate --mirrors DIR`; do not edit by hand.
# [packages.P]: where P was read (a tag, or the first commit at that version when it has none)
# and P's own [compat] bounds on the other packages here. [[names]]: kind; `positional`: the
# numbers of positional arguments some method takes ("0, 3": none or three; "1+": one or more);
# `keywords`: what its methods read (`open_keywords`: it takes any); `source`: the definitions,
# in the package's folder.
"""


def render(packages: dict, rows: list[dict]) -> str:
    """The table as TOML, one line per value."""

    def value(item) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, str):
            return json.dumps(item)
        if isinstance(item, list):
            return "[" + ", ".join(value(x) for x in item) + "]"
        if isinstance(item, dict):
            pairs = ", ".join(f"{json.dumps(k)} = {value(v)}" for k, v in sorted(item.items()))
            return "{ " + pairs + " }" if pairs else "{}"
        raise TypeError(item)

    lines = [HEADER]
    for name, info in packages.items():
        lines.append(f"[packages.{name}]")
        lines += [f"{key} = {value(item)}" for key, item in info.items()]
        lines.append("")
    for row in rows:
        lines.append("[[names]]")
        lines += [f"{key} = {value(item)}" for key, item in row.items()]
        lines.append("")
    return "\n".join(lines)


def versions_table(path: Path = TABLE) -> str:
    """The packages read and their versions as a markdown table (docs/julia.md quotes it)."""
    data = tomllib.loads(path.read_text())
    counts: dict[str, int] = {}
    for row in data["names"]:
        counts[row["package"]] = counts.get(row["package"], 0) + 1
    lines = [
        "| package | version read | from | names used |",
        "|---|---|---|---|",
    ]
    for name, info in data["packages"].items():
        where = info["ref"] if not re.fullmatch(r"[0-9a-f]{40}", info["ref"]) else "commit"
        source = f"{info['repository']} {where} `{info['commit'][:8]}`"
        if info["root"] != ".":
            source += f" ({info['root']})"
        lines.append(f"| {name} | {info['version']} | {source} | {counts.get(name, 0)} |")
    for name in sorted({row["package"] for row in data["names"]} - set(data["packages"])):
        lines.append(f"| {name} | Julia's stdlib | {STDLIB_SOURCE} | {counts[name]} |")
    return "\n".join(lines) + "\n"


def check(paths: list[Path]) -> int:
    found = problems(uses(paths), load_table())
    for line in found:
        print(line)
    print(f"checked {len(uses(paths))} external uses: {len(found)} problem(s)", file=sys.stderr)
    return 1 if found else 0


PARSER = julia_parser()


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = cli.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help=f"write {TABLE.relative_to(ROOT)}")
    make.add_argument("--mirrors", type=Path, required=True, help="folder of git mirrors")
    make.add_argument("--out", type=Path, default=TABLE)
    test = commands.add_parser("check", help="check julia/ against the table")
    test.add_argument("paths", nargs="*", type=Path, default=list(SOURCES))
    commands.add_parser("versions", help="print the packages read, as markdown")
    args = cli.parse_args(argv)
    if args.command == "generate":
        return generate(args.mirrors, args.out)
    if args.command == "versions":
        print(versions_table(), end="")
        return 0
    return check(args.paths)


if __name__ == "__main__":
    sys.exit(main())
