"""Calling a function from a name registry with checked keyword arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def call_registered(
    registry: Mapping[str, Callable[..., T]],
    what: str,
    name: str,
    kwargs: dict[str, Any],
    error: type[Exception],
) -> T:
    """`registry[name](**kwargs)`, checked first by `check_registered`."""
    return check_registered(registry, what, name, kwargs, error)(**kwargs)


def check_registered(
    registry: Mapping[str, Callable[..., T]],
    what: str,
    name: str,
    kwargs: dict[str, Any],
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
