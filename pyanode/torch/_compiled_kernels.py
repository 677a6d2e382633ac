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


@njit(cache=True)
def add_scaled(total, g, w):
    """`total += w g` in the arrays' dtype (`w` rounded to it first, as numpy does)."""
    cast = np.empty(1, total.dtype)
    cast[0] = w
    wc = cast[0]
    for n in range(total.size):
        total[n] += wc * g[n]


@njit(cache=True)
def rhs(adjoint, t, z, P, bias0, act, out, acts, G, scratch):
    """`f(t, z)` into `out` for a state `z` (u, d, B): the field (`u == 1`, post-activations
    into `acts` (2, H, B)), or the backsolve adjoint's right-hand side (`u == 2`, its parameter
    integrand into `G`)."""
    if adjoint:
        adjoint_evaluate(t, z, P, bias0, act, out, acts, G, scratch)
    else:
        evaluate(t, z[0], P, bias0, act, acts[0], acts[1], out[0])


@njit(cache=True)
def probe(adjoint, t, z, k, h, P, bias0, act, out, acts, G, scratch):
    """`f(t + h, z + h k)` into `out` (the initial step selection's trial evaluation; `h`
    rounded to the dtype, the sum not fused)."""
    cast = np.empty(1, z.dtype)
    cast[0] = h
    hc = cast[0]
    zf, kf = z.reshape(-1), k.reshape(-1)
    trial = np.empty_like(z)
    tf = trial.reshape(-1)
    for n in range(zf.size):
        tf[n] = zf[n] + hc * kf[n]
    rhs(adjoint, t + h, trial, P, bias0, act, out, acts, G, scratch)


# The step-size loop of `_loop.integrate` for one case (see `pyanode.torch._compiled`): the
# outcomes, as the `SolverError` reasons the Python side raises for them
OK, MAX_STEPS, DT_UNDERFLOW, NONFINITE, NONFINITE_STATE, NONFINITE_FIELD, NONFINITE_START = range(7)
NEED_ROOM = 7  # a taped solve that needs more rows (`adaptive_solve`)


@njit(cache=True)
def _max(a, b):
    """Python's `max(a, b)` (NaN-aware the same way: `b` only if `b > a`)."""
    return b if b > a else a


@njit(cache=True)
def _min(a, b):
    """Python's `min(a, b)`."""
    return b if b < a else a


@njit(cache=True)
def _all_finite(x):
    for v in x.reshape(-1):  # noqa: SIM110 (numba: no generator in all())
        if not math.isfinite(v):
            return False
    return True


@njit(cache=True)
def initial_step(adjoint, z0, k0, t0, t_stop, order, P, bias0, act, acts, G, scratch, rtol,
                 atol, trial):  # fmt: skip
    """`_loop.initial_step` (Hairer, Nørsett & Wanner), `trial` (u, d, B) scratch; NaN when
    `f(t0, z0)` is not finite."""
    direction = 1.0 if t_stop >= t0 else -1.0
    blocks = z0.shape[0]
    zf = z0.reshape(-1)
    d0 = scaled_norm(zf, zf, rtol, atol, blocks)
    d1 = scaled_norm(k0.reshape(-1), zf, rtol, atol, blocks)
    if not math.isfinite(d1):
        return math.nan
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = _min(h0, 0.5 * abs(t_stop - t0))
    probe(adjoint, t0, z0, k0, direction * h0, P, bias0, act, trial, acts, G, scratch)
    tf, kf = trial.reshape(-1), k0.reshape(-1)
    for n in range(tf.size):
        tf[n] = tf[n] - kf[n]
    d2 = scaled_norm(tf, zf, rtol, atol, blocks) / h0
    dmax = _max(d1, d2)
    if not math.isfinite(dmax):
        return h0 * 1e-3
    h1 = _max(1e-6, h0 * 1e-3) if dmax <= 1e-15 else (0.01 / dmax) ** (1.0 / order)
    return _min(100.0 * h0, h1)


@njit(cache=True)
def pi_toward(rest, dt, floor, safety, dtmax):
    """`PIController.toward` (`dtmax` NaN for None): `(h, lands)`."""
    reach = dt / safety
    if not math.isnan(dtmax):
        reach = _max(dt, _min(reach, dtmax))
    if rest <= reach + floor:
        return rest, True
    if rest <= 2.0 * reach:
        return 0.5 * rest, False
    return dt, False


@njit(cache=True)
def pi_adapt(ratio, h, dt, err_prev, rejected, expo_err, expo_prev, safety, factormin,
             factormax, dtmax):  # fmt: skip
    """`PIController.adapt`: `(accept, next dt, err_prev, rejected)`."""
    if ratio <= 1.0:
        raw = math.inf if ratio == 0.0 else safety * ratio**expo_err * err_prev**expo_prev
        factor = _min(factormax, _max(factormin, raw))
        if rejected:
            factor = _min(factor, 1.0)
        dt_next = h * factor
        if h < dt:
            dt_next = _max(dt_next, _min(dt, h * raw))
        if not math.isnan(dtmax):
            dt_next = _min(dt_next, dtmax)
        return True, dt_next, _max(ratio, 1e-4), False
    if math.isfinite(ratio):
        factor = _max(factormin, _min(1.0, safety * ratio**expo_err))
    else:
        factor = factormin
    return False, h * factor, err_prev, True


@njit(cache=True)
def adaptive_solve(
    adjoint, record, z0, t0, t1, A, bw, berr, c, fsal, order, P, bias0, act, stages, inputs,
    step_acts, times, acts, k_first, trial, total, g_fresh, g_step, g_last, g_prev, scratch,
    rtol, atol, control, max_steps, floor, dtmin, z1, info,
):  # fmt: skip
    """`_loop.integrate` from `(t0, z0)` to `t1` without stops between, with `rk_step`
    (`u == 1`: `z0` is `(1, d, B)`) or the backsolve adjoint's `adjoint_step` (`u == 2`,
    the parameter integrals summed into `total` over the accepted steps) and `PIController`.

    `control` holds the controller's `pcoeff, icoeff, safety, factormin, factormax, dt0,
    dtmin, dtmax` (NaN for None). `stages`, `inputs` (N, s, u, d, B) and `step_acts`
    (N, 2, s, H, B) are the steps' workspaces: two, used in turn (`step_acts` one), or with
    `record` (`rk_step` only) the tape, step `n` in row `n`, with `times[n]` its `t0, t1,
    t_end, t_first` (NaN when its first stage was the previous step's last) and the first
    stage's post-activations in `step_acts[n, :, 0]` when evaluated for it. `acts` (2, 2, H,
    B), `k_first` and `trial` (u, d, B) are scratch. Writes the final state into `z1` and
    `t, dt, nfe, accepted, rejected, nfe_graph` into `info`. **Returns:** `OK`, `NEED_ROOM`
    when the tape (at least 2 rows) has fewer rows than accepted steps (the solve went on in
    its last two rows to count them, `info[3]`: run it again with that many), or the failure
    (`info[:3]` then the `SolverError`'s fields).
    """
    pcoeff, icoeff, safety, factormin, factormax, dt0, dtmin_c, dtmax = control
    s = c.shape[0]
    u, d, B = z0.shape
    n_new = s - 1
    direction = 1.0 if t1 >= t0 else -1.0
    nfe = 0
    nfe_graph = 0
    # the controller's init, with the first stage and the initial step selection
    k0 = k_first
    rhs(adjoint, t0, z0, P, bias0, act, k0, acts[0], g_fresh, scratch)
    nfe += 1
    nfe_graph += 1
    if math.isnan(dt0):
        nfe += 1
        dt = initial_step(adjoint, z0, k0, t0, t1, order, P, bias0, act, acts[1], g_last,
                          scratch, rtol, atol, trial)  # fmt: skip
        if math.isnan(dt):
            info[0], info[1], info[2] = t0, 0.0, 1
            return NONFINITE_START
    else:
        dt = dt0
    dt = _max(dt, 0.0 if math.isnan(dtmin_c) else dtmin_c)
    dt = _min(dt, math.inf if math.isnan(dtmax) else dtmax)
    if dt < dtmin:
        info[0], info[1], info[2] = t0, dt, nfe
        return DT_UNDERFLOW
    err_prev, rejected = 1.0, False
    expo_err, expo_prev = -(icoeff + pcoeff) / order, pcoeff / order
    t, y = t0, z0
    t_first, fresh, need_first = t0, True, False
    cur, spare = -1, 0  # the workspaces of the current state (-1: z0) and of the next step
    n_accepted = n_rejected = n_steps = 0
    nonfinite = False
    while True:
        if need_first:
            k0 = k_first
            rhs(adjoint, t, y, P, bias0, act, k0, acts[0], g_fresh, scratch)
            nfe += 1
            nfe_graph += 1
            t_first, fresh, need_first = t, True, False
        if n_steps >= max_steps:
            info[0], info[1], info[2] = t, dt * direction, nfe
            return MAX_STEPS
        h, landing = pi_toward((t1 - t) * direction, dt, floor, safety, dtmax)
        if landing:
            t_next = t_end = t1
        else:
            t_next = t_end = t + h * direction
        h_signed = t_next - t
        if record:
            rows, spare = stages.shape[0], n_accepted
            if spare >= rows:  # the tape is full: go on in its last two rows in turn, counting
                spare = rows - 2 if cur == rows - 1 else rows - 1
        ws_k, ws_y = stages[spare], inputs[spare]
        if adjoint:
            ratio = adjoint_step(
                y, k0, t, h_signed, t_end, A, bw, berr, c, fsal, P, bias0, act, ws_k, ws_y,
                acts[0], g_fresh if fresh else g_prev, g_step, g_last, scratch, rtol, atol,
            )  # fmt: skip
        else:
            ws_acts = step_acts[spare if record else 0]
            if record and fresh:
                ws_acts[:, 0] = acts[0]
            ratio = rk_step(
                y[0], k0[0], t, h_signed, t_end, A, bw, berr, c, fsal, P, bias0, act,
                ws_k.reshape((s, d, B)), ws_y.reshape((s, d, B)), ws_acts, rtol, atol,
            )  # fmt: skip
        nfe += n_new
        n_steps += 1
        h = abs(t_next - t)
        accept, dt_next, err_prev, rejected = pi_adapt(
            ratio, h, dt, err_prev, rejected, expo_err, expo_prev, safety, factormin,
            factormax, dtmax,
        )  # fmt: skip
        if accept:
            if adjoint:
                add_scaled(total, g_step, -h_signed)
                g_prev, g_last = g_last, g_prev
            if record:
                times[spare, 0], times[spare, 1], times[spare, 2] = t, t_next, t_end
                times[spare, 3] = t_first if fresh else math.nan
                cur = spare
            else:
                cur, spare = spare, (1 if cur < 0 else cur)
            t, y = t_next, inputs[cur, s - 1 if fsal else 0]
            n_accepted += 1
            nfe_graph += n_new
            nonfinite = False
            if fsal:
                k0, fresh = stages[cur, s - 1], False
            else:
                need_first = True
            if landing:
                if fsal:
                    nfe_graph -= 1
                z1[:] = y
                info[0], info[1], info[2] = t, dt, nfe
                info[3], info[4], info[5] = n_accepted, n_rejected, nfe_graph
                return NEED_ROOM if record and n_accepted > stages.shape[0] else OK
        else:
            n_rejected += 1
            if not math.isfinite(ratio):
                info[0], info[1], info[2] = t, h, nfe
                if not _all_finite(y):
                    return NONFINITE_STATE
                if not _all_finite(k0):
                    return NONFINITE_FIELD
                nonfinite = True
        if dt_next < dtmin:
            info[0], info[1], info[2] = t, dt_next, nfe
            return NONFINITE if nonfinite else DT_UNDERFLOW
        dt = dt_next


@njit(cache=True)
def tape_vjp(g, x0, inputs, step_acts, times, last, A, bw, c, P, act, gk, gy, scratch, G, g0):
    """`rk_step_vjp` over the steps of an `adaptive_solve` tape (`inputs`, `step_acts`,
    `times`, its first `n = times.shape[0]` rows) in reverse, as `Backprop`'s sweep calls it
    step by step: `g` = dL/dy1 (d, B) of the last step; writes dL/dy0 into `g0` and adds the
    parameter gradients to `G`. `gk` (2, s, d, B) and `gy` (s, d, B) are scratch."""
    n = times.shape[0]
    no_seed = np.empty((0, 0, 0), g.dtype)
    no_extra = np.empty((0, 0), g.dtype)
    g_in = g.copy()
    for i in range(n - 1, -1, -1):
        t0, t1, t_end, t_first = times[i]
        fresh = not math.isnan(t_first)
        # the next step's dL/dk_0 when its first stage is this step's last
        extra = gk[(i + 1) % 2, 0] if i < n - 1 and math.isnan(times[i + 1, 3]) else no_extra
        y0 = x0 if i == 0 else inputs[i - 1, last]
        rk_step_vjp(
            g_in, extra, no_seed, fresh, y0, t0, t1 - t0, t_end, t_first if fresh else 0.0, A,
            bw, c, P, act, inputs[i], step_acts[i], gk[i % 2], gy, scratch, G, g0,
        )  # fmt: skip
        g_in[:, :] = g0
