"""The Python half of the Julia backend, run against a stand-in for PyANODE.jl.

No Julia runs here: a fake session plays PyANODE's API with the torch backend's models, in
Julia's layout ((features, samples) inputs, outputs transposed, trajectories (state, samples,
times), `!` functions as `_b`), and checks every call against the Julia source: the positional
arguments and keyword names of each function are read from julia/src/*.jl. Values cross as
juliacall's do (`julia_helpers.AnyValue`, `RawValue`: a Julia exception arrives as a RawValue
whose fields do not convert). So these tests catch a renamed keyword, a missing transpose, a
wrong history row or a conversion juliacall would refuse, without Julia.

The last tests check the flat parameter order shared by the torch and Julia backends, by hand
and against the torch models of every kind (the numpy conversions live in
tests/julia_helpers.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from julia_helpers import (
    AnyValue,
    JuliaError,
    RawValue,
    julia_to_torch,
    split_layers,
    torch_to_julia,
)

from pyanode._errors import SolverError, SpecError, TrainingDiverged
from pyanode.data import Dataset
from pyanode.julia import backend as backend_module
from pyanode.julia._load import JuliaSession
from pyanode.julia.backend import JuliaBackend, n_terms, parameter_count, weight_shapes
from pyanode.specs import MODEL_KINDS, ModelSpec, SolverSpec, TrainSpec
from pyanode.torch import build_model, flat_parameters, set_flat_parameters
from pyanode.torch._networks import ODEBlock

SRC = Path(__file__).resolve().parent.parent / "julia" / "src"


def julia_signature(name: str) -> tuple[int, set[str], set[str]]:
    """(positional count, required keywords, optional keywords) of Julia function `name`."""
    source = "\n".join(p.read_text() for p in sorted(SRC.glob("*.jl")))
    match = re.search(rf"^(?:function )?{re.escape(name)}\(", source, re.M)
    assert match, f"function {name} not found in julia/src"
    depth, start = 1, match.end()
    for i in range(start, len(source)):
        depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(source[i], 0)
        if depth == 0:
            inside = source[start:i]
            break
    positional, _, keywords = inside.partition(";")
    n_positional = len([item for item in positional.split(",") if item.strip()])
    required, optional = set(), set()
    depth, item = 0, ""
    for char in keywords + ",":
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            item = item.strip()
            if item:
                word = re.match(r"\w+!?", item).group(0)
                (optional if "=" in item else required).add(word)
            item = ""
        else:
            item += char
    return n_positional, required, optional


class SolverFailure:
    """PyANODE's `SolverFailure` as Julia holds it (reason::String, retcode::String,
    t::Float64, nfe::Int), printed as its `showerror` prints it."""

    def __init__(self, reason, retcode, t, nfe):
        self.reason, self.retcode, self.t, self.nfe = reason, retcode, t, nfe

    def __str__(self):
        return (
            f"SolverFailure: the ODE solve stopped at t = {self.t} with return code "
            f"{self.retcode} after {self.nfe} evaluations"
        )


class OptionError:
    def __init__(self, setting, value):
        self.setting, self.value = setting, value

    def __str__(self):
        return f"OptionError: {self.setting} = {self.value!r} is not accepted"


class DeviceError:
    pass


def forward_nfe_of(net: torch.nn.Module) -> int:
    """The forward NFE of the last call: summed over the model's ODE blocks (0 for a ResNet)."""
    blocks = [m for m in net.modules() if isinstance(m, ODEBlock) and m.last_stats is not None]
    return sum(block.last_stats.nfe_forward for block in blocks)


class FakePyANODE:
    """PyANODE's functions, checked against the Julia signatures, computed by torch; reached
    through an `AnyValue` as juliacall reaches the Julia module."""

    SolverFailure = SolverFailure
    OptionError = OptionError
    DeviceError = DeviceError

    def __init__(self):
        self.calls: list[str] = []
        self.fail_next_epoch = False
        self.diverge_at_batch: int | None = None
        self.init_kwargs: dict = {}

    def __getattr__(self, name):  # Julia's `f!` is the method f_b here
        if name.endswith("!"):
            return getattr(self, name[:-1] + "_b")
        raise AttributeError(name)

    def _check(self, name, args, kwargs):
        julia_name = name[:-2] + "!" if name.endswith("_b") else name
        n_positional, required, optional = julia_signature(julia_name)
        assert len(args) == n_positional, (
            f"{name}: {len(args)} positional, Julia has {n_positional}"
        )
        assert required <= set(kwargs) <= required | optional, (name, sorted(kwargs))
        self.calls.append(name)

    def init_model(self, *args, **kw):
        self._check("init_model", args, kw)
        self.init_kwargs = kw
        assert isinstance(kw["dt"], float | type(None)) and isinstance(kw["rtol"], float)
        spec = ModelSpec(
            kind=kw["kind"],
            hidden=kw["hidden"],
            augment_dim=kw["augment_dim"],
            activation=kw["activation"],
            time_dependent=kw["time_dependent"],
            degree=kw["degree"],
            n_pieces=kw["n_pieces"],
            depth=kw["depth"],
        )
        solver = SolverSpec(solver=kw["solver"], rtol=kw["rtol"], atol=kw["atol"], t1=kw["t1"])
        net = build_model(spec, kw["in_dims"], kw["out_dims"], solver, seed=kw["seed"])
        return SimpleNamespace(net=net, kw=kw, opt=torch.optim.Adam(net.parameters(), lr=kw["lr"]))

    @staticmethod
    def _x(XT, h):
        assert XT.shape[0] == h.kw["in_dims"] and XT.dtype == np.float32  # (features, samples)
        return torch.as_tensor(np.ascontiguousarray(XT.T))

    def train_epoch_b(self, *args, **kw):
        self._check("train_epoch_b", args, kw)
        h, XT, y = args
        if self.fail_next_epoch:
            raise JuliaError(SolverFailure("max_steps", "ReturnCode.MaxIters", 0.25, 123))
        assert y.dtype == np.int64 and y.ndim == 1 and sorted(kw["order"]) == list(range(len(y)))
        x, labels = self._x(XT, h), torch.as_tensor(y)
        history = {"loss": [], "nfe_forward": [], "nfe_backward": [], "seconds": []}
        for lo in range(0, len(y), kw["batch_size"]):
            idx = torch.as_tensor(kw["order"][lo : lo + kw["batch_size"]])
            h.opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(h.net(x[idx]), labels[idx])
            loss.backward()
            h.opt.step()
            diverged = self.diverge_at_batch == lo // kw["batch_size"]
            history["loss"].append(float("nan") if diverged else loss.item())
            history["nfe_forward"].append(forward_nfe_of(h.net))
            history["nfe_backward"].append(0)
            history["seconds"].append(0.01)
            if diverged:
                break  # as train_epoch! does
        return history

    def evaluate(self, *args, **kw):
        self._check("evaluate", args, kw)
        h, XT, y = args
        with torch.no_grad():
            out = h.net(self._x(XT, h))
        labels = torch.as_tensor(y)
        return {
            "loss": [torch.nn.functional.cross_entropy(out, labels).item()],
            "acc": [(out.argmax(1) == labels).double().mean().item()],
        }

    def logits(self, *args, **kw):
        self._check("logits", args, kw)
        with torch.no_grad():
            return args[0].net(self._x(args[1], args[0])).numpy().T

    def predict_proba(self, *args, **kw):
        self._check("predict_proba", args, kw)
        with torch.no_grad():
            return torch.softmax(args[0].net(self._x(args[1], args[0])), 1).numpy().T

    def features(self, *args, **kw):
        self._check("features", args, kw)
        with torch.no_grad():
            return args[0].net.features(self._x(args[1], args[0])).numpy().T

    def trajectories(self, *args, **kw):
        self._check("trajectories", args, kw)
        h, XT, ts = args
        with torch.no_grad():
            out = h.net.trajectories(self._x(XT, h), torch.as_tensor(ts)).numpy()
        return out.transpose(2, 1, 0)  # Julia's (state, samples, times)

    def forward_nfe(self, *args, **kw):
        self._check("forward_nfe", args, kw)
        with torch.no_grad():
            args[0].net(self._x(args[1], args[0]))
        return forward_nfe_of(args[0].net)

    def loss_and_gradient(self, *args, **kw):
        self._check("loss_and_gradient", args, kw)
        h, XT, y = args
        h.net.zero_grad()
        loss = torch.nn.functional.cross_entropy(h.net(self._x(XT, h)), torch.as_tensor(y))
        loss.backward()
        grad = np.concatenate([p.grad.reshape(-1).numpy() for p in h.net.parameters()])
        nfe = forward_nfe_of(h.net)
        return {"loss": [loss.item()], "gradient": grad, "nfe_forward": [nfe], "nfe_backward": [0]}

    def parameters(self, *args, **kw):
        self._check("parameters", args, kw)
        return flat_parameters(args[0].net)

    def set_parameters_b(self, *args, **kw):
        self._check("set_parameters_b", args, kw)
        assert args[1].dtype == np.float32
        set_flat_parameters(args[0].net, args[1])


def showerror(io, err):
    io.append(str(err))


def sprint(show, value):
    io: list[str] = []
    show(io, value)
    return "".join(io)


@pytest.fixture
def fake(monkeypatch):
    package = FakePyANODE()
    main = SimpleNamespace(  # the bridge module: what `jl.<name>` reaches in Julia
        PyANODE=package,
        isa=isinstance,
        sprint=sprint,
        showerror=showerror,
        Base=SimpleNamespace(DimensionMismatch=ValueError, ArgumentError=TypeError),
    )
    session = JuliaSession(
        SimpleNamespace(JuliaError=JuliaError), AnyValue(main), "/fake/julia", "1.11.2"
    )
    monkeypatch.setattr(backend_module, "load", lambda cuda=False: session)
    return package


def toy_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    return Dataset(x, y, "toy", "classification", {"n_classes": 3})


def test_fit_history_has_the_torch_trainers_rows(fake):
    train_data, test_data = toy_data(), toy_data(16, seed=1)
    rows = []
    fitted = JuliaBackend().fit(
        ModelSpec(kind="anode", hidden=8, augment_dim=1),
        SolverSpec(),
        TrainSpec(epochs=2, batch_size=16, lr=1e-2),
        train_data,
        test_data,
        on_epoch=lambda f, row: rows.append(row),
        progress=False,
    )
    assert [r["epoch"] for r in fitted.history] == [1, 2] and rows == fitted.history
    keys = {"epoch", "loss", "nfe_forward", "nfe_backward", "seconds", "train_loss", "train_acc"}
    assert set(fitted.history[0]) == keys | {"test_loss", "test_acc"}
    assert fitted.history[0]["seconds"] == pytest.approx(0.03)  # three batches of 16
    assert fitted.history[1]["nfe_forward"] > 0
    assert fake.calls.count("train_epoch_b") == 2


def test_outputs_come_back_in_python_layout(fake):
    data = toy_data()
    model = ModelSpec(kind="il-node", hidden=8, augment_dim=2)
    fitted = JuliaBackend().build(model, SolverSpec(), TrainSpec(seed=3), data)
    reference = build_model(model, 2, 3, SolverSpec(), seed=3)
    x = data.x[:5]
    with torch.no_grad():
        logits = reference(torch.as_tensor(x)).numpy()
        states = reference.trajectories(torch.as_tensor(x), torch.tensor([0.0, 0.5, 1.0])).numpy()
    np.testing.assert_allclose(fitted.logits(x), logits, rtol=1e-6)
    probabilities = fitted.predict(x)
    assert probabilities.shape == (5, 3) and probabilities.flags.c_contiguous
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probabilities.argmax(1), logits.argmax(1))
    assert fitted.features(x).shape == (5, 4)
    trajectories = fitted.trajectories(x, np.array([0.0, 0.5, 1.0]))
    assert trajectories.shape == (3, 5, 4)
    np.testing.assert_allclose(trajectories, states, rtol=1e-6)
    with torch.no_grad():
        z0 = reference.input_map(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(trajectories[0], z0, rtol=1e-6)  # z(0) = h_x(x), the input map
    assert fitted.forward_nfe(x) > 0


def test_parameters_round_trip_and_length_check(fake):
    data = toy_data()
    model = ModelSpec(kind="data-controlled", hidden=8, augment_dim=1)
    fitted = JuliaBackend().build(model, SolverSpec(), TrainSpec(), data)
    v = fitted.parameters()
    assert v.dtype == np.float32
    assert v.shape == (parameter_count(weight_shapes(model, 2, 3)),)
    fitted.set_parameters(np.arange(v.size) / v.size)
    np.testing.assert_allclose(fitted.parameters(), np.arange(v.size) / v.size, rtol=1e-6)
    with pytest.raises(ValueError, match=rf"must have shape \({v.size},\), got \(3,\)"):
        fitted.set_parameters(np.zeros(3))


def test_loss_and_gradient(fake):
    data = toy_data()
    fitted = JuliaBackend().build(ModelSpec(hidden=8), SolverSpec(), TrainSpec(), data)
    out = fitted.loss_and_gradient(data.x, data.y)
    assert set(out) == {"loss", "gradient", "nfe_forward", "nfe_backward"}
    assert out["gradient"].shape == fitted.parameters().shape
    assert out["loss"] > 0 and out["nfe_forward"] > 0


def test_solver_failure_becomes_solver_error(fake):
    """Issue 15, defect 3: the fields of a Julia exception come through `_jl_any()`, not from
    the RawValue juliacall raises (whose fields have no float() or int())."""
    data = toy_data()
    fitted = JuliaBackend().build(ModelSpec(hidden=8), SolverSpec(), TrainSpec(), data)
    fake.fail_next_epoch = True
    with pytest.raises(SolverError, match=r"max_steps.*t=0.25.*nfe=123") as caught:
        fitted.train_epoch(data, 0)
    assert caught.value.reason == "max_steps" and caught.value.nfe == 123
    assert caught.value.t == 0.25


def test_the_stand_ins_behave_like_juliacall():
    """What PythonCall 0.9.34 does (src/JlWrap/raw.jl, any.jl): a RawValue's fields are
    RawValues without float()/int(), printing is Julia's print, only a Bool is truthy, and
    `_jl_any()` gives an AnyValue whose fields convert to Python values; `f_b` is `f!`."""
    failure = SolverFailure("max_steps", "ReturnCode.MaxIters", 0.25, 123)
    raw = JuliaError(failure).exception
    assert isinstance(raw, RawValue) and isinstance(raw.t, RawValue)
    with pytest.raises(TypeError):
        float(raw.t)
    with pytest.raises(TypeError):
        int(raw.nfe)
    with pytest.raises(TypeError, match="Only Julia 'Bool'"):
        bool(raw.nfe)
    assert str(raw.reason) == "max_steps"
    converted = raw._jl_any()
    assert isinstance(converted, AnyValue)
    assert (converted.t, converted.nfe, converted.reason) == (0.25, 123, "max_steps")
    assert type(converted.t) is float and type(converted.nfe) is int
    module = AnyValue(SimpleNamespace(**{"train_epoch!": lambda: "called"}))
    assert module.train_epoch_b() == "called"


def test_diverging_loss_raises(fake):
    data = toy_data()
    fake.diverge_at_batch = 1
    with pytest.raises(TrainingDiverged, match=r"loss=nan at epoch 0, batch 1"):
        JuliaBackend().fit(ModelSpec(hidden=8), SolverSpec(), TrainSpec(batch_size=16), data)


def test_unknown_keyword_is_refused(fake):
    with pytest.raises(TypeError, match="on_batch"):
        JuliaBackend().fit(
            ModelSpec(), SolverSpec(), TrainSpec(), toy_data(), on_batch=lambda t: None
        )


def test_regression_loss_needs_regression_data(fake):
    with pytest.raises(SpecError, match="train.loss='mse' does not fit classification data"):
        JuliaBackend().build(ModelSpec(), SolverSpec(), TrainSpec(loss="mse"), toy_data())


def test_signature_parser_reads_the_julia_source():
    assert julia_signature("train_epoch!") == (3, {"batch_size"}, {"order"})
    n, required, optional = julia_signature("init_model")
    assert n == 0 and not optional
    assert {"kind", "gradient", "weight_decay", "loss", "device"} <= required
    assert {"degree", "n_pieces", "depth"} <= required


NEW_KINDS = [
    ModelSpec(kind="chebyshev", hidden=8, augment_dim=1, degree=2),
    ModelSpec(kind="fourier", hidden=8, degree=1),
    ModelSpec(kind="stacked", hidden=8, augment_dim=1, n_pieces=3),
    ModelSpec(kind="adaptive-depth", hidden=8, augment_dim=1),
    ModelSpec(kind="resnet", hidden=8, augment_dim=1, depth=2),
]


@pytest.mark.parametrize("model", NEW_KINDS, ids=lambda spec: spec.kind)
def test_new_kinds_reach_julia_with_their_settings(fake, model):
    """Nothing refuses the depth-variant, adaptive-depth and ResNet kinds before Julia starts;
    init_model gets degree, n_pieces and depth, and the parameters have the torch length."""
    data = toy_data()
    fitted = JuliaBackend().build(model, SolverSpec(), TrainSpec(seed=2), data)
    kw = fake.init_kwargs
    assert (kw["kind"], kw["degree"], kw["n_pieces"], kw["depth"]) == (
        model.kind,
        model.degree,
        model.n_pieces,
        model.depth,
    )
    reference = build_model(model, 2, 3, SolverSpec(), seed=2)
    assert fitted.parameters().shape == (parameter_count(weight_shapes(model, 2, 3)),)
    np.testing.assert_array_equal(fitted.parameters(), flat_parameters(reference))
    with torch.no_grad():
        logits = reference(torch.as_tensor(data.x[:4])).numpy()
    np.testing.assert_allclose(fitted.logits(data.x[:4]), logits, rtol=1e-6)


def test_resnet_has_no_trajectories(fake):
    data = toy_data()
    fitted = JuliaBackend().build(NEW_KINDS[-1], SolverSpec(), TrainSpec(), data)
    with pytest.raises(TypeError, match=r"model.kind='resnet' has no continuous trajectories"):
        fitted.trajectories(data.x[:3], np.array([0.0, 1.0]))
    assert "trajectories" not in fake.calls  # refused on the Python side, as torch refuses
    assert fitted.features(data.x[:3]).shape == (3, 3)
    assert fitted.forward_nfe(data.x[:3]) == 0


def test_adaptive_depth_trajectories_end_at_the_features(fake):
    """Adaptive-depth trajectories are saved at fractions s of each sample's T(x): s = 1 is
    z(T(x)), the features."""
    data = toy_data()
    solver = SolverSpec(rtol=1e-8, atol=1e-8)  # the saved states come from a different step grid
    fitted = JuliaBackend().build(NEW_KINDS[3], solver, TrainSpec(), data)
    x = data.x[:5]
    states = fitted.trajectories(x, np.array([0.0, 0.5, 1.0]))
    assert states.shape == (3, 5, 3)
    np.testing.assert_allclose(states[0], np.pad(x, ((0, 0), (0, 1))), rtol=1e-6)
    np.testing.assert_allclose(states[-1], fitted.features(x), rtol=1e-5, atol=1e-6)


# the shared flat parameter order (`weight_shapes`, `parameter_count`)


def test_hand_computed_case():
    # W = [[1, 2, 3], [4, 5, 6]] (out 2, in 3), b = [7, 8]; then W2 = [[9, 10]] (1x2), b2 = [11]
    shapes = [(2, 3), (1, 2)]
    torch_order = np.arange(1, 12, dtype=np.float32)
    julia_order = np.array([1, 4, 2, 5, 3, 6, 7, 8, 9, 10, 11], dtype=np.float32)
    np.testing.assert_array_equal(torch_to_julia(torch_order, shapes), julia_order)
    np.testing.assert_array_equal(julia_to_torch(julia_order, shapes), torch_order)
    (w1, b1), (w2, b2) = split_layers(torch_order, shapes)
    np.testing.assert_array_equal(w1, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(b1, [7, 8])
    np.testing.assert_array_equal(w2, [[9, 10]])
    np.testing.assert_array_equal(b2, [11])


def test_hand_computed_galerkin_case():
    # GalerkinLinear with K = 2, out 2, in 3: torch weight (2, 2, 3) = 1..12, bias (2, 2) = 13..16,
    # i.e. W_0 = [[1, 2, 3], [4, 5, 6]], W_1 = [[7, 8, 9], [10, 11, 12]], b_0 = [13, 14],
    # b_1 = [15, 16]. Julia stores W as (2, 3, 2) and b as (2, 2), column-major: each W_k
    # transposed, the bias as it is.
    shapes = [(2, 2, 3)]
    torch_order = np.arange(1, 17, dtype=np.float32)
    julia_order = np.array(
        [1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12, 13, 14, 15, 16], dtype=np.float32
    )
    np.testing.assert_array_equal(torch_to_julia(torch_order, shapes), julia_order)
    np.testing.assert_array_equal(julia_to_torch(julia_order, shapes), torch_order)
    [(weight, bias)] = split_layers(torch_order, shapes)
    np.testing.assert_array_equal(weight[1], [[7, 8, 9], [10, 11, 12]])
    np.testing.assert_array_equal(bias, [[13, 14], [15, 16]])
    assert parameter_count(shapes) == 16


def test_julia_order_is_fortran_memory_of_the_julia_arrays():
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (5, 3, 4), (2, 3)]
    torch_parts, julia_parts = [], []
    for shape in shapes:
        w = rng.normal(size=shape).astype(np.float32)
        b = rng.normal(size=shape[:-1]).astype(np.float32)
        torch_parts += [w.reshape(-1), b.reshape(-1)]
        # Julia's arrays: W (out, in) or (out, in, K), b (out,) or (out, K)
        w_julia = w if w.ndim == 2 else w.transpose(1, 2, 0)
        b_julia = b if b.ndim == 1 else b.T
        julia_parts += [w_julia.reshape(-1, order="F"), b_julia.reshape(-1, order="F")]
    torch_order, julia_order = np.concatenate(torch_parts), np.concatenate(julia_parts)
    np.testing.assert_array_equal(torch_to_julia(torch_order, shapes), julia_order)
    np.testing.assert_array_equal(julia_to_torch(julia_order, shapes), torch_order)
    assert parameter_count(shapes) == torch_order.size == 4 * 3 + 4 + 5 * 12 + 5 * 3 + 2 * 3 + 2


def test_wrong_length_raises():
    with pytest.raises(ValueError, match=r"must have shape \(8,\) .* got \(7,\)"):
        torch_to_julia(np.zeros(7, np.float32), [(2, 3)])
    with pytest.raises(ValueError, match=r"must have shape \(16,\) .* got \(15,\)"):
        julia_to_torch(np.zeros(15, np.float32), [(2, 2, 3)])


def test_bad_layer_shape_raises():
    with pytest.raises(ValueError, match=r"\(out, in\) or \(K, out, in\), got \(3,\)"):
        parameter_count([(3,)])


@pytest.mark.parametrize(
    ("kind", "augment_dim", "expected"),
    [
        # in 2, hidden 8, 3 classes, degree 2, n_pieces 4, depth 2; the field input is [z, x?, t]
        ("node", 0, [(8, 3), (8, 8), (2, 8), (3, 2)]),
        ("anode", 2, [(8, 5), (8, 8), (4, 8), (3, 4)]),
        ("il-node", 1, [(3, 2), (8, 4), (8, 8), (3, 8), (3, 3)]),
        ("data-controlled", 0, [(8, 5), (8, 8), (2, 8), (3, 2)]),
        ("chebyshev", 1, [(3, 8, 4), (3, 8, 8), (3, 3, 8), (3, 3)]),
        ("fourier", 0, [(5, 8, 3), (5, 8, 8), (5, 2, 8), (3, 2)]),
        ("stacked", 1, [(4, 8, 4), (4, 8, 8), (4, 3, 8), (3, 3)]),
        ("adaptive-depth", 1, [(8, 2), (1, 8), (8, 4), (8, 8), (3, 8), (3, 3)]),
        ("resnet", 1, [(8, 3), (8, 8), (3, 8), (8, 3), (8, 8), (3, 8), (3, 3)]),
    ],
)
def test_weight_shapes(kind, augment_dim, expected):
    spec = ModelSpec(kind=kind, hidden=8, augment_dim=augment_dim, degree=2, n_pieces=4, depth=2)
    assert weight_shapes(spec, 2, 3) == expected


def test_weight_shapes_without_time():
    spec = ModelSpec(kind="node", hidden=8, time_dependent=False)
    assert weight_shapes(spec, 2, 3)[0] == (8, 2)
    spec = ModelSpec(kind="stacked", hidden=8, n_pieces=2, time_dependent=False)
    assert weight_shapes(spec, 2, 3)[0] == (2, 8, 2)


def test_n_terms():
    assert n_terms(ModelSpec(kind="chebyshev", degree=3)) == 4
    assert n_terms(ModelSpec(kind="fourier", degree=3)) == 7
    assert n_terms(ModelSpec(kind="stacked", n_pieces=5)) == 5
    with pytest.raises(SpecError, match=r"model.kind='anode' has no depth-variant basis"):
        n_terms(ModelSpec(kind="anode", augment_dim=1))


KIND_SPECS = [
    ModelSpec(kind="node", hidden=6),
    ModelSpec(kind="anode", hidden=6, augment_dim=2),
    ModelSpec(kind="il-node", hidden=6, augment_dim=1),
    ModelSpec(kind="data-controlled", hidden=6, augment_dim=1),
    ModelSpec(kind="chebyshev", hidden=6, augment_dim=1, degree=3),
    ModelSpec(kind="fourier", hidden=6, degree=2, time_dependent=False),
    ModelSpec(kind="stacked", hidden=6, augment_dim=2, n_pieces=3),
    ModelSpec(kind="adaptive-depth", hidden=6, augment_dim=1),
    ModelSpec(kind="resnet", hidden=6, augment_dim=1, depth=3),
]


def test_every_model_kind_is_in_the_julia_backend():
    # every kind has a layout, checked against the torch model of the same spec below
    assert sorted(spec.kind for spec in KIND_SPECS) == sorted(MODEL_KINDS)
    for spec in KIND_SPECS:
        assert weight_shapes(spec, 2, 3)


@pytest.mark.parametrize("spec", KIND_SPECS, ids=lambda spec: spec.kind)
def test_weight_shapes_match_the_torch_models(spec):
    """Every parameter of the real torch model, in registration (= flat) order, is the weight or
    the bias of the layer `weight_shapes` says, and `split_layers` cuts torch's own flat vector
    into exactly those tensors."""
    torch_models = pytest.importorskip("pyanode.torch")
    model = torch_models.build_model(spec, 3, 4, seed=0)
    parameters = [p.detach().numpy() for p in model.parameters()]
    shapes = weight_shapes(spec, 3, 4)
    expected = [shape for weight in shapes for shape in (weight, weight[:-1])]
    assert [p.shape for p in parameters] == expected
    flat = torch_models.flat_parameters(model)
    assert flat.shape == (parameter_count(shapes),)
    assert parameter_count(shapes) == torch_models.count_parameters(spec, 3, 4)
    for (weight, bias), torch_weight, torch_bias in zip(
        split_layers(flat, shapes), parameters[::2], parameters[1::2], strict=True
    ):
        np.testing.assert_array_equal(weight, torch_weight)
        np.testing.assert_array_equal(bias, torch_bias)


def test_kind_outside_the_julia_backend_raises(monkeypatch):
    monkeypatch.setattr(backend_module, "MODEL_KINDS", ("node", "anode"))
    with pytest.raises(SpecError, match=r"model.kind='stacked' is not known; accepted: node, an"):
        weight_shapes(ModelSpec(kind="stacked"), 2, 2)
