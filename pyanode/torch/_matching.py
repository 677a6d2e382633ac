"""Parameter matching: the hidden width that gives a model a parameter budget.

"Overcoming Limitations of Neural ODEs", §4: "we choose the hidden layer's width so that the number
of parameters is approximately equal between models" (Table 1: about 1.3k each).
"""

from __future__ import annotations

import math

from pyanode._errors import SpecError
from pyanode.specs import ModelSpec
from pyanode.torch._models import count_parameters


def match_width(
    spec: ModelSpec,
    in_dim: int,
    out_dim: int,
    budget: int,
    tolerance: float = 0.05,
    *,
    max_width: int = 4096,
) -> tuple[int, int]:
    """The hidden width whose model has the parameter count closest to `budget`.

    The count grows with the width, so the search doubles and bisects for the first width at or
    above the budget and keeps it or the width below, whichever is closer (the smaller on a tie).

    Arguments:
        spec: the model; every field but `hidden` is kept.
        in_dim, out_dim: input features and outputs of the model.
        budget: the target number of trainable parameters (> 0).
        tolerance: the accepted relative distance |n - budget| / budget, in (0, 1).
        max_width: the largest width tried.

    Returns:
        `(width, n_parameters)`.

    Raises:
        SpecError: for a bad budget or tolerance, or when no width lands within the tolerance
            (the message gives the two nearest widths and their counts).
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise SpecError(f"budget must be an integer > 0, got {budget!r}")
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise SpecError(f"tolerance must be a number in (0, 1), got {tolerance!r}")

    def count(width: int) -> int:
        return count_parameters(spec.replace(hidden=width), in_dim, out_dim)

    # the first width whose count is >= budget: double until past it (building a model of the
    # largest width would be slow), then bisect
    lo, hi = 1, 1
    while hi < max_width and count(hi) < budget:
        lo, hi = hi + 1, min(2 * hi, max_width)
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) >= budget:
            hi = mid
        else:
            lo = mid + 1
    candidates = [(w, count(w)) for w in (lo - 1, lo) if w >= 1]
    width, n = min(candidates, key=lambda wn: (abs(wn[1] - budget), wn[0]))
    if abs(n - budget) > tolerance * budget:
        near = ", ".join(
            f"width {w} gives {c} ({(c - budget) / budget:+.1%})" for w, c in candidates
        )
        raise SpecError(
            f"no hidden width puts model.kind={spec.kind!r} within {tolerance:.0%} of {budget} "
            f"parameters ({math.ceil((1 - tolerance) * budget)}..."
            f"{math.floor((1 + tolerance) * budget)}): {near}; change the budget, the tolerance "
            "or the other fields of the spec (degree, n_pieces, augment_dim, depth)"
        )
    return width, n
