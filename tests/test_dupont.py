"""Dupont et al.'s qualitative claims on small settings, and the dupont-* experiments' storage,
figures and command line."""

import math

import numpy as np
import pytest
from claims import SEEDS, Bound, check

from pyanode import SpecError
from pyanode.cli import main
from pyanode.data import load_dataset
from pyanode.experiments.dupont import read_trials
from pyanode.experiments.dupont import toy_data as toy_args
from pyanode.experiments.dupont.curves import (
    DUPONT_1D,
    DUPONT_NFE,
    NFEConfig,
    Toy1dConfig,
    monotone_floor,
)
from pyanode.experiments.dupont.flows import (
    DUPONT_FEATURES,
    DUPONT_FLOWS,
    FeaturesConfig,
    FlowsConfig,
    snapshot_iterations,
)
from pyanode.experiments.dupont.generalisation import DUPONT_GENERALISATION, GeneralisationConfig
from pyanode.plots.dupont import (
    plot_features,
    plot_flows,
    plot_generalisation,
    plot_losses,
    plot_nfe,
)

G1D = Toy1dConfig(
    panels=("g1d",),
    seeds=len(SEEDS),
    g1d_epochs=20,
    g1d_points=20,
    batch_size=8,
    lr=1e-2,
    resnet_depth=3,
)
G1D_ITERATIONS = G1D.g1d_epochs * 3  # 20 points in batches of 8
# g_1d's NODE floor (the best increasing map's loss) is the constant solution's: 1.0
G1D_BOUNDS = (
    Bound("node_loss_min", ">=", 1.0 - 1e-3),
    Bound("node_loss_median", "<=", 1.0 + 1e-2),
    Bound("anode_loss_median", "<", 0.05),
    Bound("resnet_loss_median", "<", 0.05),
)
NFE_CONFIG = NFEConfig(dim=1, n_inner=100, n_outer=200, lr=1e-2, epochs=12, seeds=len(SEEDS))
# losses as fractions of the 1-D spheres' NODE floor (the best monotone map's loss)
NFE_BOUNDS = (
    Bound("nfe_gap_median", ">", 5),
    Bound("node_nfe_growth_median", ">", 5),
    Bound("node_loss_over_floor_min", ">=", 1 - 1e-3),
    Bound("anode_loss_over_floor_median", "<", 0.25),
)


def final_losses(trials) -> dict[str, np.ndarray]:
    """Each model's final full-data training loss, one per trial (seed)."""
    losses: dict[str, list[float]] = {}
    for trial in trials:
        losses.setdefault(trial.key["model"], []).append(trial.result["train_loss"])
    return {model: np.array(values) for model, values in losses.items()}


def g1d_statistics(trials) -> dict[str, float]:
    """The NODE's lowest and median final loss, the ANODE's and the ResNet's median."""
    losses = final_losses(trials)
    return {
        "node_loss_min": float(losses["node"].min()),
        **{f"{m}_loss_median": float(np.median(losses[m])) for m in ("node", "anode", "resnet")},
    }


def nfe_statistics(trials, floor: float) -> dict[str, float]:
    """Medians over the seeds of: the NODE's minus the ANODE's forward NFE and the NODE's last
    minus its first (each the mean over 5 training iterations); the NODE's lowest and the
    ANODE's median final loss over the NODE floor `floor`."""
    by_model: dict[str, dict[int, np.ndarray]] = {}
    for trial in trials:
        by_model.setdefault(trial.key["model"], {})[trial.key["seed"]] = np.asarray(
            trial.iterations["nfe_forward"], float
        )
    node, anode = by_model["node"], by_model["anode"]
    gaps = [node[s][-5:].mean() - anode[s][-5:].mean() for s in node]
    growths = [n[-5:].mean() - n[:5].mean() for n in node.values()]
    losses = final_losses(trials)
    return {
        "nfe_gap_median": float(np.median(gaps)),
        "node_nfe_growth_median": float(np.median(growths)),
        "node_loss_over_floor_min": float(losses["node"].min() / floor),
        "anode_loss_over_floor_median": float(np.median(losses["anode"]) / floor),
    }


def spheres_1d_floor(config: NFEConfig) -> float:
    data = toy_data("spheres-1d", n_inner=config.n_inner, n_outer=config.n_outer)
    return monotone_floor(data.x, data.y, either_direction=True)


def toy_data(panel, **kwargs):
    """The dataset of a toy panel."""
    name, arguments = toy_args(panel, **kwargs)
    return load_dataset(name, **arguments)


@pytest.fixture(scope="module")
def g1d_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dupont-1d")
    return out, DUPONT_1D.run(G1D, out).summary


def test_monotone_floor_is_the_isotonic_closed_form():
    # targets 1, 1, -1, 1, 1: the best monotone fit pools three points to 1/3 (either way)
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])[:, None]
    y = np.array([1.0, 1.0, -1.0, 1.0, 1.0])[:, None]
    assert monotone_floor(x, y, either_direction=True) == pytest.approx(8 / 15, abs=1e-12)
    # g_1d by an increasing map: both points go to 0, the loss of the constant solution
    g = toy_data("g1d", n_points=10)
    assert monotone_floor(g.x, g.y, either_direction=False) == pytest.approx(1.0, abs=1e-12)


def test_node_cannot_fit_g1d_while_anode_and_resnet_do(g1d_run):
    """Claim (`G1D_BOUNDS`, seeds 0-2): no NODE's final loss goes below the floor (its flow
    cannot cross, Prop. 1) and the median stays within 0.01 of it (all points -> 0, the
    constant solution); the ANODE's and the ResNet's median losses are below 0.05."""
    out, summary = g1d_run
    refs, models = summary["g1d"]["references"], summary["g1d"]["models"]
    assert refs == {"constant": 1.0, "node_floor": 1.0}
    check(g1d_statistics(read_trials(out)), G1D_BOUNDS)
    assert models["node"]["iterations"] == G1D_ITERATIONS


def test_iteration_rows_average_to_the_epoch_history(g1d_run):
    out, _ = g1d_run
    for trial in read_trials(out):
        loss = trial.iterations["loss"]
        assert np.array_equal(trial.iterations["iteration"], np.arange(1, G1D_ITERATIONS + 1))
        per_epoch = loss.reshape(G1D.g1d_epochs, 3).mean(axis=1)
        np.testing.assert_allclose(per_epoch, [r["loss"] for r in trial.history], rtol=1e-12)
        nfe_values = trial.iterations["nfe_forward"]
        resnet = trial.key["model"] == "resnet"
        assert (nfe_values == 0).all() if resnet else (nfe_values >= 14).all()


def test_figures_are_redrawn_from_stored_results_without_training(g1d_run, capsys, forbid_training):
    out, summary = g1d_run

    forbid_training()  # re-plotting must not train
    assert DUPONT_1D.run(G1D, out).summary == summary  # all skipped: read back
    png = out / "fig5_fig8_losses.png"
    png.unlink(missing_ok=True)
    assert main(["reproduce", "dupont-1d", "--out", str(out), "--plot-only"]) == 0
    assert png.stat().st_size > 10_000
    assert "g1d" in capsys.readouterr().out


def test_anode_needs_fewer_function_evaluations_on_concentric_spheres(tmp_path):
    """Claim (`NFE_BOUNDS`, seeds 0-2, 1-D spheres): at the end of training the ANODE needs
    more than 5 fewer forward NFE than the NODE, whose NFE grows by more than 5 (its flow gets
    harder to solve) (medians over seeds); no NODE goes below the best monotone map's loss
    (the 1-D flow is a homeomorphism) while the ANODE's median loss is below a quarter of it."""
    DUPONT_NFE.run(NFE_CONFIG, tmp_path)
    check(nfe_statistics(read_trials(tmp_path), spheres_1d_floor(NFE_CONFIG)), NFE_BOUNDS)
    assert [f.name for f in plot_nfe(tmp_path)] == ["fig7_fig11b_nfe.png"]


def test_flows_store_trajectories_from_the_inputs(tmp_path):
    config = FlowsConfig(panels=("g1d",), g1d_epochs=3, g1d_points=8, n_probe=6, n_times=5)
    DUPONT_FLOWS.run(config, tmp_path)
    trials = {t.key["model"]: t for t in read_trials(tmp_path)}
    anode, resnet = trials["anode"].arrays, trials["resnet"].arrays
    x = anode["probe_x"]
    assert anode["trajectories"].shape == (5, 6, 2)  # times, points, x and one augmented dim
    np.testing.assert_array_equal(anode["trajectories"][0], np.hstack([x, np.zeros_like(x)]))
    np.testing.assert_array_equal(anode["ts"], np.linspace(0, 1, 5))
    assert anode["grid_trajectories"].shape == (5, 33, 2)
    assert resnet["layer_states"].shape == (6, 6, 1)  # input and 5 blocks
    np.testing.assert_array_equal(resnet["layer_states"][0], x)
    assert [f.name for f in plot_flows(tmp_path)] == ["fig2_flows.png"]


def test_features_are_snapshotted_before_and_after_training(tmp_path):
    assert snapshot_iterations(100, 5) == [0, 25, 50, 75, 100]
    config = FeaturesConfig(epochs=2, n_inner=40, n_outer=80, n_probe=30, snapshots=3)
    DUPONT_FEATURES.run(config, tmp_path)
    for trial in read_trials(tmp_path):
        a = trial.arrays
        np.testing.assert_array_equal(a["snapshot_iterations"], [0, 2, 4])  # 2 batches / epoch
        assert a["snapshots"].shape == (3, 30, 2 if trial.key["model"] == "node" else 3)
        assert not np.allclose(a["snapshots"][0], a["snapshots"][-1])
    assert len(plot_features(tmp_path)) == 2


def test_generalisation_validates_on_exactly_the_removed_slice(tmp_path):
    config = GeneralisationConfig(
        seeds=1, epochs=1, map_epochs=1, n_inner=60, n_outer=120, grid=11, eval_every=1
    )
    summary = DUPONT_GENERALISATION.run(config, tmp_path).summary
    data = toy_data("spheres-2d", n_inner=60, n_outer=120)
    angle = np.mod(np.arctan2(data.x[:, 1], data.x[:, 0]), 2 * math.pi)
    n_slice = int((angle <= math.pi / 5).sum())
    assert summary["node"]["n_validation"] == n_slice
    for trial in read_trials(tmp_path, panel="slice-removed"):
        val = trial.iterations["test_loss"]  # the test set is the removed slice
        assert len(val) == 4 and np.isfinite(val).all()  # iterations 0..3 (177 / 64 batches)
        assert trial.result["n_test"] == n_slice
    for trial in read_trials(tmp_path, panel="spheres-2d"):
        assert trial.arrays["grid_prediction"].shape == (11, 11)
    assert len(plot_generalisation(tmp_path)) == 2


def test_configs_and_plots_reject_bad_input(tmp_path):
    with pytest.raises(SpecError, match="panels='g2d' must be a non-empty subset of: g1d, "
                       "spheres-1d, spheres-2d"):  # fmt: skip
        Toy1dConfig(panels=("g2d",))
    with pytest.raises(SpecError, match="seeds must be an integer >= 1, got 0"):
        NFEConfig(seeds=0)
    with pytest.raises(ValueError, match="panel='g3' is not known; accepted: g1d, identity"):
        toy_data("g3")
    with pytest.raises(FileNotFoundError, match="no trials.json in .*: run the command into"):
        plot_losses(tmp_path)


def test_cli_lists_the_dupont_experiments(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = capsys.readouterr().out
    for name in ("dupont-1d", "dupont-flows", "dupont-features", "dupont-nfe",
                 "dupont-generalisation", "dupont-images"):  # fmt: skip
        assert name in text


def test_plot_only_without_results_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "dupont-nfe", "--out", str(tmp_path), "--plot-only"])
    assert exit_info.value.code == 2
    assert "config.json is missing" in capsys.readouterr().err
