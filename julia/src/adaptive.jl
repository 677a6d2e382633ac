# Adaptive depth: each sample flows for its own learned time T(x) = softplus(g_omega(x)) + t_min
# ("Overcoming Limitations of Neural ODEs" §3.2, after Massaroli et al. 2020). With t = s T(x),
#     dz/ds = T(x) f(s T(x), z, x),    s in [0, 1],
# so one solve serves the whole batch and z(s = 1) = z(t = T(x)) for every sample.

"""
    T_MIN

The floor t_min of the end times T(x) (the torch backend's default), so that no sample's flow
vanishes.
"""
const T_MIN = 0.01f0

"""
    AdaptiveDepthNODE(depth_net, field, input, solver, counter, t_min)

z(0) -> z(T(x)) with a learned end time per sample, T(x) = softplus(g_omega(x)) + t_min.

The solve runs on s in [0, 1] with the rescaled field dz/ds = T f(s T, z, x): T is a
(1, batch) row multiplying the field's output, and the field's time input is the per-sample
row s T. T rides along in the ODE state as `[vec(z); vec(T)]` with dT/ds = 0, so every
sensitivity algorithm carries its gradient back to g_omega through the initial state (a value
captured by the right-hand side would get no gradient from a continuous adjoint).

## Arguments

  - `depth_net`: g_omega, mapping the block's input x (in_dims, batch) to (1, batch).
  - `field`: the vector field (an MLP whose input is assembled by `input`).
  - `input`: a [`FieldInput`](@ref); its time row is s T(x).
  - `solver`: [`SolverOptions`](@ref) on s in [0, 1] (see [`rescaled_options`](@ref)).
  - `counter`: the [`NFECounter`](@ref) of the block.
  - `t_min`: the floor of T(x) (> 0).

## Input

  - `(z0, x)`: the initial state (state_dims, batch) and the block's input.

## Returns

  - z(T(x)) as (state_dims, batch), and the unchanged state.

## Parameters

`(depth_net, field)`, in this order (the torch backend's: g_omega, then the field).
"""
struct AdaptiveDepthNODE{G, F, S <: SolverOptions} <:
    AbstractLuxContainerLayer{(:depth_net, :field)}
    depth_net::G
    field::F
    input::FieldInput
    solver::S
    counter::NFECounter
    t_min::Float32
end

function (a::AdaptiveDepthNODE)(input::Tuple, ps, st::NamedTuple)
    z0, x = input
    end_time = end_times(a, x, ps, st)
    sol = adaptive_solve(a, z0, x, end_time, ps.field, st.field)
    return state_part(last(sol.u), size(z0)), st
end

"""
    end_times(block, x, ps, st) -> AbstractMatrix

T(x) = softplus(g_omega(x)) + t_min as a (1, batch) row.
"""
function end_times(a::AdaptiveDepthNODE, x, ps, st)
    return softplus.(first(a.depth_net(x, ps.depth_net, st.depth_net))) .+ a.t_min
end

"""
    state_part(u, dims) -> AbstractMatrix

The state z (the first `prod(dims)` entries of the solver's state `[vec(z); vec(T)]`), shaped
`dims`.
"""
state_part(u::AbstractVector, dims::Tuple) = reshape(u[1:prod(dims)], dims)

"""
    adaptive_solve(block, z0, x, end_time, p, st; saveat = Float32[]) -> ODESolution

Solve dz/ds = T f(s T, z, x) on s in [0, 1] from the state `[vec(z0); vec(end_time)]` with the
field's parameters `p`, saving at the fractions `saveat` and at s = 1 (see
[`block_solve`](@ref)). Counts forward evaluations and throws a [`SolverFailure`](@ref) if the
solve fails.
"""
function adaptive_solve(
    a::AdaptiveDepthNODE,
    z0::AbstractMatrix,
    x,
    end_time,
    p,
    st;
    saveat::AbstractVector = Float32[],
)
    counter = a.counter
    field = a.field
    input = a.input
    rows, cols = size(z0)
    n = rows * cols
    tail = @ignore_derivatives fill!(similar(z0, cols), zero(eltype(z0)))
    function dudt(u, q, s)
        @ignore_derivatives count_call!(counter)
        z = reshape(u[1:n], rows, cols)
        row = reshape(u[(n + 1):end], 1, cols)
        dz = row .* first(field(assemble(input, z, x, row, s), q, st))
        return vcat(vec(dz), tail)
    end
    u0 = vcat(vec(z0), vec(end_time))
    prob = ODEProblem{false}(ODEFunction{false}(dudt), u0, a.solver.tspan, p)
    start = @ignore_derivatives counter.calls
    sol = block_solve(prob, a.solver, saveat)
    @ignore_derivatives finish_solve!(counter, start, sol)
    return sol
end

time_span(a::AdaptiveDepthNODE) = a.solver.tspan

"""
    block_states(block::AdaptiveDepthNODE, z0, x, ps, st, fractions) -> Vector

The states z(s T(x)) at the fractions `s` (sorted, in [0, 1]) of each sample's own end time.

## Throws

  - `ArgumentError` when the solver did not save at exactly these fractions (repeated ones).
"""
function block_states(
    a::AdaptiveDepthNODE,
    z0::AbstractMatrix,
    x,
    ps,
    st,
    fractions::AbstractVector,
)
    end_time = end_times(a, x, ps, st)
    sol = adaptive_solve(a, z0, x, end_time, ps.field, st.field; saveat = fractions)
    return [state_part(u, size(z0)) for u in saved_states(sol, fractions)]
end

"""
    rescaled_options(solver, state_dims) -> SolverOptions

The solve settings of an adaptive-depth block: time span (0, 1), and both tolerances scaled by
`sqrt(state_dims / (state_dims + 1))`. The solver's state holds T (one entry per sample, never
in error) beside z (`state_dims` per sample); its RMS error norm over both is the norm over z
times `sqrt(state_dims / (state_dims + 1))`, so the scaled tolerances make the step-size test
exactly the one on z alone, as in the torch backend. Fixed-step settings are unchanged.
"""
function rescaled_options(solver::SolverOptions, state_dims::Integer)
    span = (0.0f0, 1.0f0)
    solver.adaptive || return with_span(solver, span)
    c = Float32(sqrt(state_dims / (state_dims + 1)))
    return with_span(solver, span; reltol = solver.reltol * c, abstol = solver.abstol * c)
end

"""
    depth_net(in_dims, hidden, activation, t1, t_min) -> Chain

g_omega: `Dense(in_dims => hidden, activation) -> Dense(hidden => 1)`, the last bias starting
at `softplus^-1(t1 - t_min)` so that T(x) starts near t1 (as in the torch backend).
"""
function depth_net(in_dims::Integer, hidden::Integer, activation, t1::Real, t_min::Real)
    start = Float32(log(expm1(t1 - t_min)))
    return Chain(
        Dense(in_dims => hidden, activation),
        Dense(hidden => 1; init_bias = (_, n) -> fill(start, n)),
    )
end
