"""Shared fixtures: float64 where a test asks for it, one thread for reproducible timings."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def float64():
    """Run the test with torch's default dtype float64, restoring it afterwards."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(before)
