"""Argument checks shared by the data generators: each names the argument, the value received
and what is accepted, and raises `DataError`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyanode._errors import DataError


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """Return `value` as an int, or raise if it is not an integer >= `minimum` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(
            f"{name} must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}"
        )
    if value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# the data are float32: a length or scale beyond this would make points or noise infinite
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float(
    name: str, value: Any, *, positive: bool = False, nonnegative: bool = False
) -> float:
    """Return `value` as a finite float (> 0 if `positive`, >= 0 if `nonnegative`) whose size
    fits the float32 data (|value| <= 3.4e38), or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if positive and not (math.isfinite(value) and value > 0.0):
        raise DataError(f"{name} must be finite and > 0, got {value!r}")
    if nonnegative and not (math.isfinite(value) and value >= 0.0):
        raise DataError(f"{name} must be finite and >= 0, got {value!r}")
    if not math.isfinite(value):
        raise DataError(f"{name} must be finite, got {value!r}")
    if abs(value) > FLOAT32_MAX:
        raise DataError(
            f"{name}={value!r} does not fit the float32 data: use |{name}| <= {FLOAT32_MAX:.3g}"
        )
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return `value` as a bool, or raise if it is not True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(
            f"{name} must be True or False, got {value!r} of type {type(value).__name__}"
        )
    return bool(value)


def check_seed(seed: Any) -> int:
    """Return `seed` as an int >= 0; None is refused, since every generator is a pure function
    of its seed."""
    return check_int("seed", seed, minimum=0)


def check_choice(name: str, value: Any, accepted: tuple[str, ...]) -> str:
    """Return `value` if it is one of `accepted`, or raise listing them."""
    if not isinstance(value, str) or value not in accepted:
        listed = ", ".join(map(repr, accepted))
        raise DataError(f"{name}={value!r} is not known; accepted: {listed}")
    return value
