"""The checks at pyanode's boundaries, written once: plain values, names, keys, and calls of a
name registry.

Every check names the field, the value received and what is accepted, and raises the caller's
error type (`SpecError` for specs, `DataError` for data, `ValueError` for the solvers' API), so
that a message about "a finite number > 0" is worded the same everywhere. Numpy scalars count as
numbers; bools never do. No torch, no numpy import cost beyond numpy itself.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds are unsigned 32-bit (and 64-bit) integers


def _is_bool(value: Any) -> bool:
    kind = type(value)  # numpy's bool is `bool_` in numpy 1, `bool` in numpy 2
    return isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool_", "bool")
    )


def _bound(
    low: float | None, high: float | None, strict_low: bool, strict_high: bool = False
) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if strict_low else '>='} {_show(low)}")
    if high is not None:
        parts.append(f"{'<' if strict_high else '<='} {_show(high)}")
    return " and ".join(parts)


def _show(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"  # a seed's bound in full


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    strict_low: bool = False,
    strict_high: bool = False,
    error: type[Exception] = ValueError,
) -> float:
    """`value` as a finite float within the bounds, or raise `error`.

    Arguments:
        name: the field as the user writes it (`"solver.rtol"`, `"rtol"`, `"dt"`).
        value: what was given.
        low, high: inclusive bounds (exclusive with `strict_low`, `strict_high`); None for none.
        error: the exception type to raise.
    """
    bound = _bound(low, high, strict_low, strict_high)
    what = "a finite number" + (f" {bound}" if bound else "")
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be {what}, got {value!r} of type {type(value).__name__}")
    x = float(value)
    if (
        not math.isfinite(x)
        or (low is not None and (x <= low if strict_low else x < low))
        or (high is not None and (x >= high if strict_high else x > high))
    ):
        raise error(f"{name} must be {what}, got {value!r}")
    return x


def check_int(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    error: type[Exception] = ValueError,
) -> int:
    """`value` as an int within the inclusive bounds, or raise `error` (bools and floats are
    refused, also `2.0`: a count written as a float is usually a mistake)."""
    bound = _bound(low, high, False)
    what = "an integer" + (f" {bound}" if bound else "")
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be {what}, got {value!r} of type {type(value).__name__}")
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        raise error(f"{name} must be {what}, got {value!r}")
    return n


def check_seed(name: str, value: Any, *, error: type[Exception] = ValueError) -> int:
    """A seed: an integer in [0, 2**32 - 1], the range numpy and torch both accept."""
    return check_int(name, value, low=0, high=SEED_MAX, error=error)


def check_bool(name: str, value: Any, *, error: type[Exception] = ValueError) -> bool:
    """`value` if it is True or False, else raise `error`."""
    if not _is_bool(value):
        raise error(f"{name} must be true or false, got {value!r} of type {type(value).__name__}")
    return bool(value)


def check_choice(
    name: str,
    value: Any,
    accepted: Iterable[str],
    *,
    aliases: Mapping[str, str] | None = None,
    error: type[Exception] = ValueError,
) -> str:
    """The canonical name of `value`: itself if in `accepted`, or what `aliases` maps it to.

    Raises `error` listing the accepted names (and the aliases) otherwise.
    """
    accepted = tuple(accepted)
    if isinstance(value, str):
        if value in accepted:
            return value
        if aliases and value in aliases:
            return aliases[value]
    listed = ", ".join(accepted)
    if aliases:
        listed += " (aliases: " + ", ".join(f"{a} = {c}" for a, c in aliases.items()) + ")"
    raise error(f"{name}={value!r} is not known; accepted: {listed}")


def check_subset(
    name: str, values: Any, accepted: Iterable[str], *, error: type[Exception] = ValueError
) -> tuple[str, ...]:
    """`values` as a tuple if it is a non-empty collection of names from `accepted`, else raise
    `error` listing the accepted names."""
    accepted = tuple(accepted)
    listed = not isinstance(values, str) and isinstance(values, Iterable)
    names = tuple(values) if listed else ()
    if not names or any(v not in accepted for v in names):
        shown = ",".join(map(str, names)) if listed else values
        raise error(f"{name}={shown!r} must be a non-empty subset of: {', '.join(accepted)}")
    return names


def check_keys(
    name: str, given: Iterable[str], accepted: Iterable[str], *, error: type[Exception] = ValueError
) -> None:
    """Raise `error` naming the keys of `given` that are not in `accepted` (unknown keys never
    pass silently)."""
    accepted = tuple(accepted)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        listed = ", ".join(sorted(accepted))
        raise error(f"unknown key(s) {', '.join(unknown)} in {name}; accepted: {listed}")


def check_registered(
    registry: Mapping[str, Callable[..., T]],
    what: str,
    name: str,
    kwargs: Mapping[str, Any],
    error: type[Exception],
) -> Callable[..., T]:
    """`registry[name]`, after checking that it exists and accepts the keywords `kwargs`.

    Arguments:
        registry: names (as written at the CLI or in a config) to functions.
        what: the noun for messages, e.g. "dataset".
        name, kwargs: the entry and its keyword arguments.
        error: the exception type to raise (the caller's layer's ValueError subclass).

    Raises:
        error: naming the unknown name or keywords and listing the accepted ones.
    """
    if name not in registry:
        raise error(f"{what} {name!r} is not known; accepted: {', '.join(registry)}")
    function = registry[name]
    accepted = list(inspect.signature(function).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise error(
            f"{what} {name!r} got unknown keyword argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    return function


def call_registered(
    registry: Mapping[str, Callable[..., T]],
    what: str,
    name: str,
    kwargs: dict[str, Any],
    error: type[Exception],
) -> T:
    """`registry[name](**kwargs)`, checked first by `check_registered`."""
    return check_registered(registry, what, name, kwargs, error)(**kwargs)
