"""The numba kernels of the compiled path: a whole Runge–Kutta step of `MLPField` and its VJP.

Imported only through `pyanode.torch._compiled` (numba is optional). Every array is
features-major, as in `MLPKernel`: a state is `(d, B)`, a hidden activation `(H, B)`; the
products are BLAS calls (`np.dot`, scipy's BLAS), the rest are loops. The weights of one solve
come packed in one flat array `P` (see `unpack`): `W0z (H, d)`, `W0z^T`, `w_t (H)`, `W1 (H, H)`,
`W1^T`, `b1 (H)`, `W2 (d, H)`, `W2^T`, `b2 (d)`; the first layer's bias of the solve, `b0 + W0x
x`, is `bias0 (H, B)`. The parameter gradients are summed into one flat array `G` in the
layout of `unpack_grads`: `gW0z`, `g_wt`, `gW1`, `gb1`, `gW2`, `gb2`, then `gbias0 (H, B)` (the
sum of the first layer's pre-activation gradients, from which `b0`, `W0x` and the control `x`
get theirs).

`cache=True` writes the machine code next to this file (in `__pycache__`), or in numba's
user-wide cache when that directory is not writable (`NUMBA_CACHE_DIR` overrides both), so the
compilation (a few seconds per dtype) is paid once per machine, not once per process.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

RELU, TANH = 0, 1


@njit(cache=True)
def unpack(P, d, H):
    """The weight views of a packed `P` (see the module docstring)."""
    o = 0
    w0 = P[o : o + H * d].reshape(H, d)
    o += H * d
    w0t = P[o : o + d * H].reshape(d, H)
    o += d * H
    wt = P[o : o + H]
    o += H
    w1 = P[o : o + H * H].reshape(H, H)
    o += H * H
    w1t = P[o : o + H * H].reshape(H, H)
    o += H * H
    b1 = P[o : o + H]
    o += H
    w2 = P[o : o + d * H].reshape(d, H)
    o += d * H
    w2t = P[o : o + H * d].reshape(H, d)
    o += H * d
    b2 = P[o : o + d]
    return w0, w0t, wt, w1, w1t, b1, w2, w2t, b2


def weights_size(d: int, H: int) -> int:
    """The length of `P`."""
    return 2 * H * d + H + 2 * H * H + H + 2 * d * H + d


@njit(cache=True)
def pack(w0, d, time_dependent, w1, b1, w2, b2, P):
    """Pack an MLP field's parameters into `P` (`w0` the first layer's whole weight: its first
    `d` columns act on the state, its last on t when `time_dependent`)."""
    H = w0.shape[0]
    pw0, pw0t, pwt, pw1, pw1t, pb1, pw2, pw2t, pb2 = unpack(P, d, H)
    for i in range(H):
        for m in range(d):
            pw0[i, m] = w0[i, m]
            pw0t[m, i] = w0[i, m]
        pwt[i] = w0[i, w0.shape[1] - 1] if time_dependent else 0.0
        pb1[i] = b1[i]
        for m in range(H):
            pw1[i, m] = w1[i, m]
            pw1t[m, i] = w1[i, m]
        for m in range(d):
            pw2[m, i] = w2[m, i]
            pw2t[i, m] = w2[m, i]
    for m in range(d):
        pb2[m] = b2[m]


@njit(cache=True)
def unpack_grads(G, d, H, B):
    """The gradient views of a flat `G` (see the module docstring)."""
    o = 0
    gw0 = G[o : o + H * d].reshape(H, d)
    o += H * d
    gwt = G[o : o + H]
    o += H
    gw1 = G[o : o + H * H].reshape(H, H)
    o += H * H
    gb1 = G[o : o + H]
    o += H
    gw2 = G[o : o + d * H].reshape(d, H)
    o += d * H
    gb2 = G[o : o + d]
    o += d
    gbias0 = G[o : o + H * B].reshape(H, B)
    return gw0, gwt, gw1, gb1, gw2, gb2, gbias0


def grads_size(d: int, H: int, B: int) -> int:
    """The length of `G`."""
    return H * d + H + H * H + H + d * H + d + H * B


@njit(cache=True)
def _activate(x, b, t, wt, act):
    """`x = act(x + b + t w_t)` in place (`b` (H, B) or (H, 1) broadcast by rows)."""
    H, B = x.shape
    per_column = b.shape[1] == B
    for i in range(H):
        shift = t * wt[i]
        for j in range(B):
            v = x[i, j] + ((b[i, j] if per_column else b[i, 0]) + shift)
            if act == RELU:
                x[i, j] = 0.0 if v < 0.0 else v  # NaN stays NaN, as torch.relu
            else:
                x[i, j] = math.tanh(v)


@njit(cache=True)
def _act_backward(g, h, act):
    """`g *= act'(pre-activation)`, read from the post-activation `h`, in place."""
    H, B = g.shape
    for i in range(H):
        for j in range(B):
            if act == RELU:
                if not h[i, j] > 0.0:
                    g[i, j] = 0.0
            else:
                g[i, j] *= 1.0 - h[i, j] * h[i, j]


@njit(cache=True)
def evaluate(t, y, P, bias0, act, h0, h1, k):
    """`k = f(t, y)`, keeping the post-activations `h0`, `h1` (H, B)."""
    d, H = y.shape[0], h0.shape[0]
    w0, w0t, wt, w1, w1t, b1, w2, w2t, b2 = unpack(P, d, H)
    np.dot(w0, y, h0)
    _activate(h0, bias0, t, wt, act)
    np.dot(w1, h0, h1)
    _activate(h1, b1.reshape(H, 1), 0.0, wt, act)
    np.dot(w2, h1, k)
    B = k.shape[1]
    for i in range(d):
        for j in range(B):
            k[i, j] += b2[i]


@njit(cache=True)
def vjp(t, y, h0, h1, g, weight, P, act, gy, G, scratch):
    """`gy = g^T df/dy` at the evaluation `(t, y) -> (h0, h1)`, and `weight` times the
    parameter gradients `g^T df/dtheta` added to `G` (none for `weight == 0`); `scratch` as in
    `unpack_scratch`."""
    d, H, B = y.shape[0], h0.shape[0], y.shape[1]
    ga1, ga0, tmp_hh, tmp_dh, tmp_hd = unpack_scratch(scratch, d, H, B)
    w0, w0t, wt, w1, w1t, b1, w2, w2t, b2 = unpack(P, d, H)
    gw0, gwt, gw1, gb1, gw2, gb2, gbias0 = unpack_grads(G, d, H, B)
    np.dot(w2t, g, ga1)
    _act_backward(ga1, h1, act)
    np.dot(w1t, ga1, ga0)
    _act_backward(ga0, h0, act)
    np.dot(w0t, ga0, gy)
    if weight == 0.0:
        return
    np.dot(g, h1.T, tmp_dh)
    np.dot(ga1, h0.T, tmp_hh)
    np.dot(ga0, y.T, tmp_hd)
    for i in range(d):
        acc = 0.0
        for j in range(B):
            acc += g[i, j]
        gb2[i] += weight * acc
        for m in range(H):
            gw2[i, m] += weight * tmp_dh[i, m]
    for i in range(H):
        acc1 = 0.0
        acc0 = 0.0
        for j in range(B):
            acc1 += ga1[i, j]
            acc0 += ga0[i, j]
            gbias0[i, j] += weight * ga0[i, j]
        gb1[i] += weight * acc1
        gwt[i] += weight * t * acc0
        for m in range(H):
            gw1[i, m] += weight * tmp_hh[i, m]
        for m in range(d):
            gw0[i, m] += weight * tmp_hd[i, m]


@njit(cache=True)
def scaled_norm(x, y0, rtol, atol, blocks):
    """`Stepper.scaled_norm` of flat `x` and `y0`: the largest RMS norm of `x / (atol + rtol
    |y0|)` over `blocks` equal consecutive blocks (1: the RMS norm; 2: the backsolve adjoint's
    seminorm over `y` and `a`), NaN if any is."""
    n = x.size // blocks
    worst = 0.0
    for u in range(blocks):
        total = 0.0
        for i in range(u * n, (u + 1) * n):
            q = x[i] / (abs(y0[i]) * rtol + atol)
            total += q * q
        norm = math.sqrt(total / n)
        if math.isnan(norm):
            return math.nan
        worst = max(worst, norm)
    return worst


@njit(cache=True)
def stage_time(i, c, t0, h, t_end):
    """Where stage `i` is evaluated: `t_end` for `c == 1` (the float below a jump), else
    `t0 + c h`."""
    return t_end if c[i] == 1.0 else t0 + c[i] * h


@njit(cache=True)
def rk_step(
    x0, k0, t0, h, t_end, A, bw, berr, c, fsal, P, bias0, act, stages, inputs, acts, rtol, atol
):
    """One Runge–Kutta step of `f` from `(t0, x0)` with first stage `k0` (see `_step.py`).

    Writes the stages into `stages` (s, d, B), the stage inputs into `inputs` (row 0: `y1` for
    a method without FSAL; for FSAL `y1` is the last stage input), the post-activations of
    stages 1.. into `acts` (2, s, H, B). **Returns:** the error ratio (RMS norm of the scaled
    error, `h` and `rtol` applied to the float as in `Stepper.step`), or 0.0 for `rtol <= 0`.
    """
    s = c.shape[0]
    d, B = x0.shape
    stages[0, :, :] = k0
    for i in range(1, s):
        yi = inputs[i]
        for p in range(d):
            for j in range(B):
                acc = 0.0
                for m in range(i):
                    acc += A[i, m] * stages[m, p, j]
                yi[p, j] = x0[p, j] + h * acc
        evaluate(
            stage_time(i, c, t0, h, t_end), yi, P, bias0, act, acts[0, i], acts[1, i], stages[i]
        )
    y1 = inputs[s - 1] if fsal else inputs[0]
    if not fsal:
        for p in range(d):
            for j in range(B):
                acc = 0.0
                for m in range(s):
                    acc += bw[m] * stages[m, p, j]
                y1[p, j] = x0[p, j] + h * acc
    if rtol <= 0.0:
        return 0.0
    ratio_of_tols = atol / rtol
    total = 0.0
    for p in range(d):
        for j in range(B):
            e = 0.0
            for m in range(s):
                e += berr[m] * stages[m, p, j]
            q = e / (max(abs(x0[p, j]), abs(y1[p, j])) + ratio_of_tols)
            total += q * q
    return math.sqrt(total / (d * B)) * abs(h) / rtol


@njit(cache=True)
def rk_step_vjp(
    g,
    extra,
    seed,
    fresh,
    x0,
    t0,
    h,
    t_end,
    t_first,
    A,
    bw,
    c,
    P,
    act,
    inputs,
    acts,
    gk,
    gy,
    scratch,
    G,
    g0,
):
    """The VJP of one recorded step (`Stepper.step_vjp`, the same sums).

    `g` = dL/dy1 (d, B); `extra` (d, B) the next step's dL/dk_0 when its first stage is this
    step's last (else empty); `seed` (s, d, B) added to dL/dk_j (else empty); `fresh` whether
    the first stage was evaluated for this step (at `t_first`, its post-activations in
    `acts[:, 0]`). Writes dL/dk_j into `gk`, the stage inputs' gradients into `gy`, dL/dy0 into
    `g0`, and adds the parameter gradients to `G`; `scratch` is `vjp`'s.
    """
    s = c.shape[0]
    d, B = g.shape
    has_extra = extra.size > 0
    has_seed = seed.size > 0
    for j in range(s - 1, -1, -1):
        needed = bw[j] != 0.0 or has_seed or (j == s - 1 and has_extra)
        for i in range(j + 1, s):
            needed = needed or A[i, j] != 0.0
        gkj = gk[j]
        for p in range(d):
            for q in range(B):
                acc = 0.0
                for i in range(j + 1, s):
                    acc += A[i, j] * gy[i, p, q]
                v = h * (bw[j] * g[p, q] + acc)
                if j == s - 1 and has_extra:
                    v += extra[p, q]
                if has_seed:
                    v += seed[j, p, q]
                gkj[p, q] = v
        if j == 0:
            break
        if not needed:
            gy[j, :, :] = 0.0
            continue
        t = stage_time(j, c, t0, h, t_end)
        vjp(t, inputs[j], acts[0, j], acts[1, j], gkj, 1.0, P, act, gy[j], G, scratch)
    for p in range(d):
        for q in range(B):
            acc = g[p, q]
            for i in range(1, s):
                acc += gy[i, p, q]
            g0[p, q] = acc
    if fresh:
        vjp(t_first, x0, acts[0, 0], acts[1, 0], gk[0], 1.0, P, act, gy[0], G, scratch)
        for p in range(d):
            for q in range(B):
                g0[p, q] += gy[0, p, q]


def scratch_size(d: int, H: int, B: int) -> int:
    """The length of the `scratch` of `vjp` (see `unpack_scratch`)."""
    return 2 * H * B + H * H + 2 * d * H


@njit(cache=True)
def unpack_scratch(scratch, d, H, B):
    """`vjp`'s scratch arrays `(ga1, ga0, tmp_hh, tmp_dh, tmp_hd)` in one flat array."""
    ga1 = scratch[: H * B].reshape(H, B)
    ga0 = scratch[H * B : 2 * H * B].reshape(H, B)
    o = 2 * H * B
    tmp_hh = scratch[o : o + H * H].reshape(H, H)
    o += H * H
    tmp_dh = scratch[o : o + d * H].reshape(d, H)
    o += d * H
    tmp_hd = scratch[o : o + H * d].reshape(H, d)
    return ga1, ga0, tmp_hh, tmp_dh, tmp_hd


@njit(cache=True)
def _adjoint_rhs(t, z, P, bias0, act, out, acts, weight, G, scratch):
    """The backsolve adjoint's right-hand side at `z = [y, a]` (2, d, B): `out = [f(t, y),
    -a df/dy]`, and `weight` times `a df/dtheta` added to `G`."""
    d, B = z.shape[1], z.shape[2]
    evaluate(t, z[0], P, bias0, act, acts[0], acts[1], out[0])
    vjp(t, z[0], acts[0], acts[1], z[1], weight, P, act, out[1], G, scratch)
    gy = out[1]
    for p in range(d):
        for j in range(B):
            gy[p, j] = -gy[p, j]


@njit(cache=True)
def adjoint_evaluate(t, z, P, bias0, act, out, acts, G, scratch):
    """`_adjoint_rhs` of a freshly evaluated first stage: `G = a df/dtheta` there."""
    G[:] = 0.0
    _adjoint_rhs(t, z, P, bias0, act, out, acts, 1.0, G, scratch)


@njit(cache=True)
def adjoint_step(
    z0, k0, t0, h, t_end, A, bw, berr, c, fsal, P, bias0, act, stages, inputs, acts,
    g_first, g_step, g_last, scratch, rtol, atol,
):  # fmt: skip
    """One step of the backsolve adjoint `[y, a]` (2, d, B) with the seminorm (`rk_step`'s
    sums; the error ratio the largest RMS norm over `y` and `a`).

    The parameter integrals do not steer the steps: `g_step` gets `sum_i b_i a_i df/dtheta`
    at the stages (`g_first` that of the first stage), and for a FSAL method `g_last` that of
    the last stage alone (the next step's first). **Returns:** the error ratio (0.0 for
    `rtol <= 0`).
    """
    s = c.shape[0]
    d, B = z0.shape[1], z0.shape[2]
    stages[0, :, :, :] = k0
    for n in range(g_step.size):
        g_step[n] = bw[0] * g_first[n]
    for i in range(1, s):
        zi = inputs[i]
        for u in range(2):
            for p in range(d):
                for j in range(B):
                    acc = 0.0
                    for m in range(i):
                        acc += A[i, m] * stages[m, u, p, j]
                    zi[u, p, j] = z0[u, p, j] + h * acc
        ti = stage_time(i, c, t0, h, t_end)
        if fsal and i == s - 1:  # b_{s-1} = 0: only the next step needs its integrand
            g_last[:] = 0.0
            _adjoint_rhs(ti, zi, P, bias0, act, stages[i], acts, 1.0, g_last, scratch)
        else:
            _adjoint_rhs(ti, zi, P, bias0, act, stages[i], acts, bw[i], g_step, scratch)
    z1 = inputs[s - 1] if fsal else inputs[0]
    if not fsal:
        for u in range(2):
            for p in range(d):
                for j in range(B):
                    acc = 0.0
                    for m in range(s):
                        acc += bw[m] * stages[m, u, p, j]
                    z1[u, p, j] = z0[u, p, j] + h * acc
    if rtol <= 0.0:
        return 0.0
    ratio_of_tols = atol / rtol
    norms = np.zeros(2)
    for u in range(2):
        total = 0.0
        for p in range(d):
            for j in range(B):
                e = 0.0
                for m in range(s):
                    e += berr[m] * stages[m, u, p, j]
                q = e / (max(abs(z0[u, p, j]), abs(z1[u, p, j])) + ratio_of_tols)
                total += q * q
        norms[u] = math.sqrt(total / (d * B))
    if math.isnan(norms[0]) or math.isnan(norms[1]):
        return math.nan
    return max(norms[0], norms[1]) * abs(h) / rtol
