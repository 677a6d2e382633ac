"""The one validation module (`pyanode._validate`): every check names the field, the value and
what is accepted, raises the caller's error type, and lets a good value through unchanged."""

import numpy as np
import pytest

from pyanode._errors import DataError, SpecError
from pyanode._validate import (
    call_registered,
    check_bool,
    check_choice,
    check_int,
    check_keys,
    check_number,
    check_registered,
    check_seed,
    check_subset,
)


def test_good_values_pass_as_plain_python_values():
    assert check_number("rtol", np.float32(0.5), low=0, strict_low=True) == 0.5
    assert check_number("f", 0, low=0, high=1, strict_high=True) == 0.0
    assert check_int("n", np.int64(3), low=1) == 3
    assert check_seed("seed", 2**32 - 1) == 2**32 - 1
    assert check_bool("b", np.bool_(True)) is True
    assert check_choice("solver", "dopri5", ("dp5",), aliases={"dopri5": "dp5"}) == "dp5"
    assert check_subset("models", ["node", "anode"], ("node", "anode", "resnet")) == (
        "node",
        "anode",
    )


BAD = [
    (lambda: check_number("dt", 0.0, low=0, strict_low=True), "dt must be a finite number > 0"),
    (
        lambda: check_number("f", 1.0, low=0, high=1, strict_high=True),
        "f must be a finite number >= 0 and < 1, got 1.0",
    ),
    (lambda: check_number("f", 1.5, high=1), "f must be a finite number <= 1, got 1.5"),
    (lambda: check_number("x", float("nan")), "x must be a finite number, got nan"),
    (lambda: check_number("x", True), "x must be a finite number, got True of type bool"),
    (lambda: check_number("x", np.True_), "x must be a finite number, got .*True.* of type bool"),
    (lambda: check_int("n", 2.0, low=1), "n must be an integer >= 1, got 2.0 of type float"),
    (lambda: check_seed("seed", -1), "seed must be an integer >= 0 and <= 4294967295, got -1"),
    (lambda: check_bool("b", 1), "b must be true or false, got 1 of type int"),
    (
        lambda: check_choice("kind", "cnn", ("node", "anode")),
        "kind='cnn' is not known; accepted: node, anode",
    ),
    (
        lambda: check_subset("models", ("node", "cnn"), ("node",)),
        "models='node,cnn' must be a non-empty subset of: node",
    ),
    (lambda: check_subset("models", (), ("node",)), "models='' must be a non-empty subset"),
    (lambda: check_subset("models", "node", ("node",)), "models='node' must be a non-empty"),
    (
        lambda: check_keys("[train]", {"lr", "lrr"}, ("lr", "epochs")),
        r"unknown key\(s\) lrr in \[train\]; accepted: epochs, lr",
    ),
]


@pytest.mark.parametrize(("check", "message"), BAD)
def test_bad_values_name_the_field_the_value_and_what_is_accepted(check, message):
    with pytest.raises(ValueError, match=message):
        check()


def test_the_callers_error_type_is_raised():
    with pytest.raises(SpecError):
        check_int("n", 0, low=1, error=SpecError)
    with pytest.raises(DataError):
        check_subset("panels", ("x",), ("g1d",), error=DataError)


def _dataset(*, n: int = 10, seed: int = 0) -> tuple[int, int]:
    return n, seed


def test_a_registry_entry_is_called_with_checked_keywords():
    registry = {"toy": _dataset}
    assert call_registered(registry, "dataset", "toy", {"n": 3}, DataError) == (3, 0)
    assert check_registered(registry, "dataset", "toy", {}, DataError) is _dataset
    with pytest.raises(DataError, match="dataset 'toys' is not known; accepted: toy"):
        call_registered(registry, "dataset", "toys", {}, DataError)
    with pytest.raises(
        DataError, match=r"dataset 'toy' got unknown keyword argument\(s\) m; accepted: n, seed"
    ):
        call_registered(registry, "dataset", "toy", {"m": 3}, DataError)
