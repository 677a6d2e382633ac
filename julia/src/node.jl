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

## Input

  - `(z0, x)`: the initial state (state_dims, batch) and the block's input (control_dims,
    batch), which only a data-controlled field reads.

## Returns

  - z(t1) as (state_dims, batch), and the unchanged state.

## Parameters

The field's parameters (this is a wrapper layer).

## Throws

  - [`SolverFailure`](@ref) when the solve stops before `t1`.
"""
struct NeuralODE{F, S <: SolverOptions} <: AbstractLuxWrapperLayer{:field}
    field::F
    input::FieldInput
    solver::S
    counter::NFECounter
end

function (n::NeuralODE)(input::Tuple, ps, st::NamedTuple)
    z0, x = input
    sol = node_solve(n, z0, x, ps, st; save_everystep = false, save_start = false)
    return reshape(last(sol.u), size(z0)), st
end

"""
    node_solve(block, z0, x, ps, st; kwargs...) -> ODESolution

Solve the block's ODE from `z0` (state_dims, batch) with parameters `ps`; `kwargs` go to
`solve` after the block's own (e.g. `saveat` for trajectories). The solver's state is
`vec(z0)`, since `ReverseDiffAdjoint` accepts only vector states; reshape each `sol.u[i]` to
`size(z0)`. The adaptive error norm (RMS over all entries) is the same either way. Counts
forward evaluations and turns an unsuccessful return code into a [`SolverFailure`](@ref).
"""
function node_solve(n::NeuralODE, z0::AbstractMatrix, x, ps, st; kwargs...)
    counter = n.counter
    field = n.field
    input = n.input
    rows, cols = size(z0)
    ones_row = @ignore_derivatives fill!(similar(z0, 1, cols), one(eltype(z0)))
    function dudt(u, p, t)
        @ignore_derivatives count_call!(counter)
        z = reshape(u, rows, cols)
        return vec(first(field(assemble(input, z, x, ones_row, t), p, st)))
    end
    prob = ODEProblem{false}(ODEFunction{false}(dudt), vec(z0), n.solver.tspan, ps)
    start = @ignore_derivatives counter.calls
    sol = solve(
        prob,
        n.solver.alg;
        sensealg = n.solver.sensealg,
        n.solver.kwargs...,
        kwargs...,
    )
    @ignore_derivatives finish_solve!(counter, start, sol)
    return sol
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
