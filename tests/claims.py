"""Claims on learned quantities: a statistic over seeds held against a bound.

What a trained model reaches (accuracy, loss, NFE) differs from CPU to CPU: BLAS kernels round
differently, and float32 training trajectories drift apart. So each test that bounds a learned
quantity states its claim over the seeds `SEEDS` (a median, or the worst seed where a theorem
bounds every seed) with a margin measured over seeds 0-8: tools/seed_groups.py evaluates the
same statistics, through the same functions, on the groups `SEED_GROUPS`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

SEEDS = (0, 1, 2)
SEED_GROUPS = ((0, 1, 2), (3, 4, 5), (6, 7, 8))

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Bound:
    """`statistic op limit`, e.g. `Bound("median_test_acc", ">=", 0.95)`."""

    statistic: str
    op: str
    limit: float

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.limit))

    def __str__(self) -> str:
        return f"{self.statistic} {self.op} {self.limit:g}"


def check(values: dict[str, float], bounds: tuple[Bound, ...]) -> None:
    """Assert every bound on `values`, naming each that fails with its value."""
    failed = [f"{b}: {values[b.statistic]:.6g}" for b in bounds if not b.holds(values[b.statistic])]
    assert not failed, "; ".join(failed)
