# The ODE block as a Lux layer (DiffEqFlux's NeuralODE, inlined) and the ANODE augmentation.

"""
    Augment(augment_dim)

Append `augment_dim` zero rows to the input: the ANODE map R^d -> R^(d+p) of Dupont et al.
(2019). ANODE is this layer composed with a NODE block, never a flag of the block.

## Input

  - `x`: (d, batch).

## Returns

  - (d + augment_dim, batch) and the unchanged state.

## Parameters

None.
"""
struct Augment <: AbstractLuxLayer
    augment_dim::Int
end

function (a::Augment)(x::AbstractMatrix, ps, st::NamedTuple)
    pad = @ignore_derivatives fill!(similar(x, a.augment_dim, size(x, 2)), zero(eltype(x)))
    return vcat(x, pad), st
end

"""
    NeuralODE(field, input, solver, counter)

The ODE block z(0) -> z(t1) of Chen et al. (2018): solves dz/dt = f(t, z, x) with the Lux
vector field `field`, its input assembled by `input` (a [`FieldInput`](@ref)), and the
algorithm, sensitivity algorithm and tolerances of `solver` (a [`SolverOptions`](@ref)).
Every evaluation of the field is counted in `counter` (an [`NFECounter`](@ref)).

A field whose weights jump in t (a [`DepthVariantField`](@ref) on a
[`PiecewiseConstantBasis`](@ref): the stacked NODE) is solved piece by piece, one solve per
piece of [`piece_bounds`](@ref), each starting from the end state of the one before with the
weights of its own piece. This is what `tstops` / `d_discontinuities` at the break points
would do (land on each break point, restart the FSAL stage), with no doubt about which piece a
stage evaluated exactly on a break point belongs to, and with no reliance on how each
SciMLSensitivity adjoint carries stops into its backward solve.

## Input

  - `(z0, x)`: the initial state (state_dims, batch) and the block's input (control_dims,
    batch), which only a data-controlled field reads.

## Returns

  - z(t1) as (state_dims, batch), and the unchanged state.

## Parameters

The field's parameters (this is a wrapper layer).

## Throws

  - [`SolverFailure`](@ref) when a solve stops before the end of its piece.
"""
struct NeuralODE{F, S <: SolverOptions} <: AbstractLuxWrapperLayer{:field}
    field::F
    input::FieldInput
    solver::S
    counter::NFECounter
end

function (n::NeuralODE)(input::Tuple, ps, st::NamedTuple)
    z0, x = input
    z = z0
    for piece in 1:(@ignore_derivatives n_pieces(n))
        sol = node_solve(n, z, x, ps, st; piece)
        z = reshape(last(sol.u), size(z0))
    end
    return z, st
end

"""
    piece_bounds(block) -> Vector{Float32}

`[t0, tau_1, ..., tau_{K-1}, t1]`: the block's time span cut at the break points of its field
(just `[t0, t1]` for a field without jumps).
"""
function piece_bounds(n::NeuralODE)
    t0, t1 = n.solver.tspan
    inside = [Float32(tau) for tau in field_jump_times(n.field) if t0 < Float32(tau) < t1]
    return vcat(t0, inside, t1)
end

n_pieces(n::NeuralODE) = length(piece_bounds(n)) - 1

"""
    time_span(block) -> Tuple{Float32, Float32}

The times a block's trajectories may be saved at: `(0, t1)` for an ODE block, `(0, 1)` (the
fraction of each sample's own end time) for [`AdaptiveDepthNODE`](@ref).
"""
time_span(n::NeuralODE) = n.solver.tspan

"""
    node_solve(block, z0, x, ps, st; piece = 1, saveat = Float32[]) -> ODESolution

Solve the block's ODE on `piece` (see [`piece_bounds`](@ref)) from `z0` (state_dims, batch)
with parameters `ps`, saving at the times `saveat` (within the piece) and at the piece's end
(see [`block_solve`](@ref)). The solver's state is `vec(z0)`, since `ReverseDiffAdjoint`
accepts only vector states; reshape each `sol.u[i]` to `size(z0)`. The adaptive error norm (RMS
over all entries) is the same either way. The step budget `maxiters` applies to each piece.
Counts forward evaluations and turns an unsuccessful return code into a
[`SolverFailure`](@ref).
"""
function node_solve(
    n::NeuralODE,
    z0::AbstractMatrix,
    x,
    ps,
    st;
    piece::Integer = 1,
    saveat::AbstractVector = Float32[],
)
    counter = n.counter
    field = n.field
    input = n.input
    rows, cols = size(z0)
    ones_row = @ignore_derivatives fill!(similar(z0, 1, cols), one(eltype(z0)))
    bounds = @ignore_derivatives piece_bounds(n)
    function dudt(u, p, t)
        @ignore_derivatives count_call!(counter)
        z = reshape(u, rows, cols)
        h = assemble(input, z, x, ones_row, t)
        return vec(evaluate_field(field, h, t, piece, ones_row, p, st))
    end
    tspan = (bounds[piece], bounds[piece + 1])
    prob = ODEProblem{false}(ODEFunction{false}(dudt), vec(z0), tspan, ps)
    start = @ignore_derivatives counter.calls
    sol = block_solve(prob, n.solver, saveat)
    @ignore_derivatives finish_solve!(counter, start, sol)
    return sol
end

"""
    block_states(block, z0, x, ps, st, times) -> Vector of (state_dims, batch) matrices

The states at `times` (sorted, inside [`time_span`](@ref)), solved piece by piece: each time
is saved by the piece that ends at or after it.

## Throws

  - `ArgumentError` when the solver did not save at exactly these times (repeated times).
"""
function block_states(n::NeuralODE, z0::AbstractMatrix, x, ps, st, times::AbstractVector)
    bounds = piece_bounds(n)
    states = AbstractMatrix[]
    z = z0
    for piece in 1:n_pieces(n)
        lo, hi = bounds[piece], bounds[piece + 1]
        here = [t for t in times if (piece == 1 ? t >= lo : t > lo) && t <= hi]
        sol = node_solve(n, z, x, ps, st; piece, saveat = here)
        append!(states, [reshape(u, size(z0)) for u in saved_states(sol, here)])
        z = reshape(last(sol.u), size(z0))
    end
    return states
end

"""
    saved_states(sol, times) -> Vector

The states a solve saved at `times` (its `saveat`; the end state may follow them).

## Throws

  - `ArgumentError` when the solve did not save at exactly these times (repeated times).
"""
function saved_states(sol, times::AbstractVector)
    n = length(times)
    (length(sol.t) >= n && sol.t[1:n] == times) ||
        throw(ArgumentError(
            "the solver saved at $(sol.t) for the times $times; give distinct times",
        ))
    return sol.u[1:n]
end

"""
    finish_solve!(counter, start, sol)

Record the solve's forward evaluations and throw a [`SolverFailure`](@ref) if it failed.
"""
function finish_solve!(counter::NFECounter, start::Integer, sol)
    record_forward!(counter, start)
    successful_retcode(sol) && return nothing
    retcode = string(sol.retcode)
    t = isempty(sol.t) ? NaN : Float64(last(sol.t))
    throw(SolverFailure(failure_reason(retcode), retcode, t, counter.calls - start))
end
