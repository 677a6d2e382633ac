"""The one generator of command-line options: one option per field of a spec or config
dataclass, with the field's help, choices and default (always shown), and back.

A field takes part when it was made with `pyanode.specs.setting` (its metadata holds `help`).
How a field becomes an option:

- the name is `--<field-name>` (underscores as dashes), or `metadata["option"]`;
- a bool is a flag `--name` (default false) or a `--name / --no-name` pair (default true);
- a tuple takes several values, space- or comma-separated (`--nets node,anode`,
  `--tolerances 1e-3 1e-6`);
- a dict takes `KEY=VALUE` items, the option repeated (`--dataset-arg n=300`); values are
  Python literals where they parse as one (`3`, `1e-3`, `[0, 1]`, `true` stays a string);
- `choices` lists the accepted names; `exclusive` groups options that exclude each other.

Unset options read back as "not given", so a value from a config file or a `--paper` preset
is kept unless the option is on the command line.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def add_commands(
    parser: argparse.ArgumentParser,
    dest: str,
    metavar: str,
    helps: Mapping[str, str],
    words: list[str],
    add: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    """One subcommand of `parser` per entry of `helps` (name -> its --help line), chosen into
    `args.<dest>`; only the one named first in `words` gets its arguments, from `add(sub,
    name)`, so only it imports what they need."""
    commands = parser.add_subparsers(dest=dest, metavar=metavar, required=True)
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text, description=text, allow_abbrev=False)
        if words[:1] == [name]:
            add(sub, name)


def add_options(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    *,
    prefix: str = "",
    title: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add one option per field of the dataclass `cls` to `parser`.

    Arguments:
        parser: the parser (or argument group) to add to.
        cls: the dataclass.
        prefix: prepended to each option's dest, to keep several dataclasses apart
            (e.g. `"model."`); the flags themselves must be unique.
        title: put the options in an argument group of this title.
        defaults: defaults to show instead of the fields' own (e.g. those of a config file).
    """
    target = parser.add_argument_group(title) if title else parser
    hints = typing.get_type_hints(cls)
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta:
            continue
        default = _default(f) if defaults is None or f.name not in defaults else defaults[f.name]
        shown = meta.get("shown", _show(default))
        kwargs: dict[str, Any] = {"dest": prefix + f.name, "default": None}
        if "exclusive" in meta:  # on the parser itself: argparse cannot nest it in a group
            if meta["exclusive"] not in groups:
                groups[meta["exclusive"]] = parser.add_mutually_exclusive_group()
            where = groups[meta["exclusive"]]
        else:
            where = target
        kind, inner = _kind(hints[f.name])
        if meta.get("required"):
            kwargs.update(required=True, help=meta["help"])
        else:
            kwargs["help"] = f"{meta['help']} (default: {shown})"
        metavar = f.name.upper()
        if kind is bool and default:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is bool:
            kwargs.update(action="store_const", const=True)
        elif kind is tuple:
            kwargs.update(nargs="+", type=_item_parser(meta.get("type", inner)), metavar=metavar)
        elif kind is dict:
            kwargs.update(action="append", type=key_value, metavar="KEY=VALUE")
        else:
            kwargs.update(type=meta.get("type", kind), metavar=metavar)
        if "choices" in meta:
            kwargs["choices"] = tuple(meta["choices"])
            kwargs.pop("metavar", None)
        flags = ["--" + meta.get("option", f.name.replace("_", "-"))]
        if "short" in meta:
            flags.insert(0, meta["short"])
        where.add_argument(*flags, **kwargs)


def given(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict[str, Any]:
    """The values of the options of `cls` given on the command line (tuples for tuple fields,
    one dict for dict fields), keyed by field name."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, prefix + f.name, None)
        if "help" not in f.metadata or value is None:
            continue
        kind, _ = _kind(hints[f.name])
        if kind is tuple:
            value = tuple(item for part in value for item in part)
        elif kind is dict:
            value = dict(value)
        out[f.name] = value
    return out


def key_value(text: str) -> tuple[str, Any]:
    """`"n=300"` -> `("n", 300)`: the value as a Python literal where it is one, else text.

    Raises:
        argparse.ArgumentTypeError: for text without `=`.
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} must be KEY=VALUE, e.g. batch=64")
    try:
        return key.replace("-", "_"), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.replace("-", "_"), value


def output_path(text: str) -> Path:
    """An output path option (`--out`, `--csv`): never empty (an empty path would write into
    the working directory).

    Raises:
        argparse.ArgumentTypeError: for an empty or blank path.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: name a folder or file, e.g. results/run")
    return Path(text)


def build(cls: type, args: argparse.Namespace, *, prefix: str = "", base: Any = None) -> Any:
    """`cls` with its defaults (or the fields of `base`), overridden by the options given."""
    values = {} if base is None else {f.name: getattr(base, f.name)
                                      for f in dataclasses.fields(cls)}  # fmt: skip
    return cls(**{**values, **given(args, cls, prefix=prefix)})


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) if value else "none"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) if value else "none"
    return "none" if value is None else str(value)


def _kind(hint: Any) -> tuple[type, Any]:
    """The option kind of a type hint (bool, tuple, dict or the scalar type) and, for a tuple,
    its item type; `X | None` is `X`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _kind(inner[0])
    if origin is tuple:
        items = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return tuple, (items[0] if items else str)
    if origin is dict or hint is dict:
        return dict, None
    if hint is typing.Any:
        return str, None
    return hint, None


def _item_parser(kind: Any):
    """Parses one command-line word of a tuple option: comma-separated items of `kind`."""

    def parse(text: str) -> list[Any]:
        items = [part.strip() for part in text.split(",") if part.strip()]
        try:
            return [kind(item) for item in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected {getattr(kind, '__name__', kind)} values"
            ) from None

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names it in its errors
    return parse
