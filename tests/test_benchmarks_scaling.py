"""benchmarks/scaling.py: a library's time to reach an error, read off its work-precision
curve."""

import math

import pytest

from benchmarks.scaling import time_to_error


def _points(library, pairs):
    return [{"library": library, "error": e, "wall": [t], "cpu": [t]} for e, t in pairs]


def test_time_to_error_interpolates_in_log_log_inside_the_shared_range():
    # a: time = 1e-3 / error (slope -1); b: twice as slow, over a narrower range of errors
    a = _points("a", [(1e-2, 0.1), (1e-4, 10.0), (1e-6, 1000.0)])
    b = _points("b", [(1e-3, 2.0), (1e-5, 200.0)])
    out = time_to_error(a + b)
    low, high = math.log(1e-5), math.log(1e-3)  # the range both reached
    expected = [math.exp(low + (high - low) * f) for f in (0.25, 0.5, 0.75)]
    assert out["levels"] == pytest.approx(expected)
    for level, ta, tb in zip(out["levels"], out["times"]["a"], out["times"]["b"], strict=True):
        assert ta == pytest.approx(1e-3 / level, rel=1e-9)
        assert tb == pytest.approx(2e-3 / level, rel=1e-9)


def test_time_to_error_without_a_shared_range_has_no_levels():
    out = time_to_error(_points("a", [(1e-2, 1.0), (1e-3, 2.0)]) + _points("b", [(1e-5, 1.0)]))
    assert out == {"levels": [], "times": {}}
