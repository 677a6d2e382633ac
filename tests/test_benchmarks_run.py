"""benchmarks/run.py without its peer libraries: one line naming the missing one and the extra."""

import sys

import pytest


@pytest.mark.parametrize("missing", ["torchdiffeq", "torchdyn"])
def test_missing_peer_is_one_line_naming_the_bench_extra(missing, monkeypatch):
    from benchmarks import run

    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--quick"])
    message = str(exit_info.value.code)
    assert f"cannot import {missing}" in message and "\n" not in message
    assert "pip install -e '.[bench]'" in message and "torchdyn==1.0.6" in message
