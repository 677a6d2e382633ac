"""The arithmetic floor of one forward solve: the multiply-adds of its field evaluations over this
core's GEMM rate (`torch.mm`, one thread).

One evaluation of the field `[z, t] -> Linear(d+1, h) -> ReLU -> Linear(h, h) -> ReLU -> Linear(h,
d)` on a batch of B is three matrix products, B (d+1) h + B h h + B h d multiply-adds. Each
product's rate is measured at its own inner shape (k, n) with a long batch (`LONG` x B rows), so
that one call's dispatch (a few µs) does not count, in both layouts (batch-major `(B, k) @ (k, n)`
and features-major `(n, k) @ (k, B)`, as pyanode's fused kernel computes it), the faster kept: that
is what the arithmetic at this shape costs on this core. The floor of a solve is NFE times the sum
of the three products' times; the rate of one large square product (the core's peak) and the rate
of the calls at batch B itself (dispatch included) are stored beside it.
"""

from __future__ import annotations

import time

import torch

LONG = 64  # rows of the long-batch products, in multiples of the batch
PEAK = 1024  # the large square product: PEAK x PEAK times PEAK x PEAK


def gemm_rate(m: int, k: int, n: int, *, seconds: float = 0.2, rounds: int = 7) -> float:
    """Multiply-adds per second of `torch.mm` of (m, k) by (k, n), float32: the best of
    `rounds` rounds of about `seconds` each (the best: other processes only slow it down)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds / 4:  # calls per round
        torch.mm(a, b, out=out)
        calls += 1
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / calls)
    return m * k * n / best


def field_layers(dim: int, hidden: int) -> list[tuple[int, int]]:
    """(inputs, outputs) of the field's three products, `t` being one more input."""
    return [(dim + 1, hidden), (hidden, hidden), (hidden, dim)]


def measure(batch: int, hidden: int, dims: tuple[int, ...]) -> dict:
    """The GEMM rates and the per-evaluation floor of the field at every state dim in `dims`."""
    out = {"peak": {"shape": [PEAK, PEAK, PEAK], "macs_per_s": gemm_rate(PEAK, PEAK, PEAK)},
           "batch": batch, "hidden": hidden, "long": LONG, "fields": {}}  # fmt: skip
    for dim in dims:
        layers = []
        for k, n in field_layers(dim, hidden):
            macs = batch * k * n
            layers.append({
                "k": k, "n": n, "macs": macs,
                # the arithmetic at this shape, in the faster layout
                "macs_per_s": max(gemm_rate(LONG * batch, k, n), gemm_rate(n, k, LONG * batch)),
                # one call at batch B: with dispatch
                "macs_per_s_call": max(gemm_rate(batch, k, n), gemm_rate(n, k, batch)),
            })  # fmt: skip
        out["fields"][str(dim)] = {
            "layers": layers,
            "macs_per_evaluation": sum(layer["macs"] for layer in layers),
            "seconds_per_evaluation": sum(lay["macs"] / lay["macs_per_s"] for lay in layers),
        }
    return out


def table(floor: dict, forward: dict[int, tuple[int, float]]) -> str:
    """Markdown rows: per state dim, the floor of one forward solve against the measured one
    (`forward[dim] = (NFE, seconds)`)."""
    lines = ["| state dim | MACs per evaluation | floor per evaluation | NFE | floor per solve | "
             "measured | measured / floor |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for dim, (nfe, seconds) in forward.items():
        field = floor["fields"][str(dim)]
        per = field["seconds_per_evaluation"]
        lines.append(
            f"| {dim} | {field['macs_per_evaluation']} | {per * 1e6:.2f} µs | {nfe} | "
            f"{nfe * per * 1e6:.1f} µs | {seconds * 1e6:.1f} µs | {seconds / (nfe * per):.1f}x |"
        )
    return "\n".join(lines)
