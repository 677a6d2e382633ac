"""docs/torchdiffeq.md: every Python snippet on the page runs (the torchdiffeq and torchdyn ones
too, where those are installed), so the side-by-side code cannot drift from the library."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "torchdiffeq.md"
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippets() -> list[tuple[int, str]]:
    """`(line, code)` of each fenced Python block of the page."""
    text = PAGE.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in _FENCE.finditer(text)]


def test_the_page_has_side_by_side_snippets():
    codes = [code for _, code in snippets()]
    assert len(codes) >= 8
    assert sum("from torchdiffeq import" in c for c in codes) >= 2
    assert any("from torchdyn" in c for c in codes) and any("NeuralODELayer" in c for c in codes)


@pytest.mark.parametrize(
    "line, code", snippets(), ids=lambda x: f"line{x}" if isinstance(x, int) else ""
)
def test_snippet_runs(line, code):
    for peer in ("torchdiffeq", "torchdyn"):
        uses = f"import {peer}" in code or f"from {peer}" in code
        if uses and importlib.util.find_spec(peer) is None:
            pytest.skip(f"{peer} is not installed (the bench extra)")
    exec(compile(code, f"{PAGE}:{line}", "exec"), {"__name__": "snippet"})
