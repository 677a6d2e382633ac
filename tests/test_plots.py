"""The shared look and saving of the figures (`pyanode.plots`); the figures themselves are tested
with the experiments that store their data (test_table1, test_dupont, test_studies)."""

import os

import pytest

from pyanode._names import MODEL_KINDS
from pyanode.plots import MODEL_COLORS, MODEL_LABELS, new_figure, save_figure


def test_every_model_kind_has_a_colour_and_a_label():
    assert set(MODEL_COLORS) == set(MODEL_KINDS) == set(MODEL_LABELS)
    assert len(set(MODEL_COLORS.values())) == len(MODEL_KINDS)  # told apart in every figure


def test_save_figure_writes_each_format_whole_and_nothing_else(tmp_path):
    fig = new_figure(2, 2)
    fig.add_subplot().plot([0, 1], [1, 0])
    files = save_figure(fig, tmp_path / "sub" / "curve.png", formats=("png", "pdf"))
    assert files == [tmp_path / "sub" / "curve.png", tmp_path / "sub" / "curve.pdf"]
    assert files[0].read_bytes().startswith(b"\x89PNG") and files[1].read_bytes()[:4] == b"%PDF"
    assert sorted(os.listdir(tmp_path / "sub")) == ["curve.pdf", "curve.png"]  # no temporary


def test_save_figure_refuses_an_unknown_format_naming_the_accepted_ones(tmp_path):
    fig = new_figure(2, 2)
    with pytest.raises(ValueError, match=r"format='docx' is not known; accepted: .*png"):
        save_figure(fig, tmp_path / "curve", formats=("png", "docx"))
    assert os.listdir(tmp_path) == ["curve.png"]  # the formats before it are written
