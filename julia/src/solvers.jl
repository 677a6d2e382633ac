# Solver and gradient (sensealg) choices, and the one call of `solve`: the one place where their
# names become objects and every keyword `solve` gets is written out by name.

const ADAPTIVE_SOLVERS = Dict{String, Any}("bosh3" => BS3, "dp5" => DP5, "tsit5" => Tsit5)
const FIXED_STEP_SOLVERS = Dict{String, Any}(
    "euler" => Euler,
    "midpoint" => Midpoint,
    "rk4" => RK4,
)

const GRADIENTS = (
    "backprop",
    "adjoint",
    "interpolating-adjoint",
    "quadrature-adjoint",
    "gauss-adjoint",
)

"""
    sensealg_from_name(name, device, rtol, atol)

The SciMLSensitivity algorithm for the gradient method `name`:

  - `"backprop"`: discrete adjoint, differentiating through the solver's steps:
    `ReverseDiffAdjoint()` on the CPU (it needs CPU `Array` states) and `TrackerAdjoint()` on
    a GPU. (`ZygoteAdjoint` exists but its docstring says it fails on almost every solver.)
  - `"adjoint"`: `BacksolveAdjoint` (Chen et al. 2018: solve the state backwards with the
    adjoint).
  - `"interpolating-adjoint"`, `"quadrature-adjoint"`, `"gauss-adjoint"`: SciMLSensitivity's
    `InterpolatingAdjoint`, `QuadratureAdjoint`, `GaussAdjoint`. The quadrature of
    `QuadratureAdjoint` runs at the solver's tolerances `rtol`, `atol` (its own defaults,
    `reltol = 1e-3`, would cap the gradient's accuracy whatever the solver's).

The continuous adjoints always get `autojacvec = ZygoteVJP()`: the automatic choice can pick
`EnzymeVJP`, which crashes on a Lux right-hand side (SciMLSensitivity #1512), and only
`ZygoteVJP` works on a GPU. They need a dense forward solution, which [`block_solve`](@ref)
keeps.

## Throws

  - `OptionError` for an unknown name.
"""
function sensealg_from_name(name::AbstractString, device, rtol::Real, atol::Real)
    name == "backprop" &&
        return device isa CPUDevice ? ReverseDiffAdjoint() : TrackerAdjoint()
    name == "adjoint" && return BacksolveAdjoint(; autojacvec = ZygoteVJP())
    name == "interpolating-adjoint" &&
        return InterpolatingAdjoint(; autojacvec = ZygoteVJP())
    name == "quadrature-adjoint" &&
        return QuadratureAdjoint(;
            autojacvec = ZygoteVJP(),
            abstol = Float64(atol),
            reltol = Float64(rtol),
        )
    name == "gauss-adjoint" && return GaussAdjoint(; autojacvec = ZygoteVJP())
    throw(OptionError("solver.gradient", name, collect(GRADIENTS)))
end

"""
    step_controller()

The step-size controller of the adaptive solvers: the integral controller of the torch
backend (`pyanode.solvers.PIController` with its defaults `pcoeff = 0`, `safety = 0.9`,
`factormin = 0.2`, `factormax = 10`), so that both backends take the same steps. The next step
is `dt * clamp(gamma * err^(-1 / (q + 1)), qmin, qmax)` with `q` the order of the embedded
error estimate, and the first step may grow by at most `qmax` too (OrdinaryDiffEq's default
`qmax_first_step` is 10000). OrdinaryDiffEq's default is a PI controller.
"""
function step_controller()
    return IController(;
        gamma = 0.9f0,
        qmin = 0.2f0,
        qmax = 10.0f0,
        qmax_first_step = 10.0f0,
    )
end

"""
    SolverOptions(alg, sensealg, tspan, adaptive, reltol, abstol, dt, maxiters, controller)

Everything the ODE block passes to `solve` (see [`block_solve`](@ref)): the algorithm, the
sensitivity algorithm, the time span `(0, t1)` in `Float32`, whether the step is adaptive, the
tolerances, the fixed or first step `dt` (`nothing`: automatic), the step budget and the
step-size controller (`nothing` for a fixed step).
"""
struct SolverOptions{A, S, C}
    alg::A
    sensealg::S
    tspan::Tuple{Float32, Float32}
    adaptive::Bool
    reltol::Float32
    abstol::Float32
    dt::Union{Nothing, Float32}
    maxiters::Int
    controller::C
end

"""
    with_span(options, tspan; reltol = options.reltol, abstol = options.abstol)

`options` on another time span (and, optionally, tolerances).
"""
function with_span(
    s::SolverOptions,
    tspan::Tuple{Real, Real};
    reltol::Real = s.reltol,
    abstol::Real = s.abstol,
)
    span = (Float32(first(tspan)), Float32(last(tspan)))
    return SolverOptions(
        s.alg,
        s.sensealg,
        span,
        s.adaptive,
        Float32(reltol),
        Float32(abstol),
        s.dt,
        s.maxiters,
        s.controller,
    )
end

"""
    block_solve(prob, options, saveat) -> ODESolution

Solve `prob` with `options`, saving at the times `saveat` and at the end of `prob`'s span (only
there when `saveat` is empty): the one call of `solve` in PyANODE, every keyword written by
name, so that `tools/julia_api.py` can check each against the packages' sources.

Saving is restricted with `saveat`, never with `save_everystep = false`: SciMLSensitivity keeps
the caller's keywords for the forward solve of the continuous adjoints, and OrdinaryDiffEq keeps
a dense solution only when `save_everystep` is on. Without it `QuadratureAdjoint` reads the
trajectory by linear interpolation between the saved points (a wrong gradient, silently), and
`InterpolatingAdjoint` / `GaussAdjoint` switch to checkpointing and re-solve the forward pass
with the tolerances alone, which a fixed-step solver cannot do (`Euler` throws) and which makes
`RK4` / `Midpoint` re-solve adaptively. With `saveat` SciMLSensitivity solves the forward pass
densely itself and reads the saved states from that solution.
"""
function block_solve(prob, s::SolverOptions, saveat::AbstractVector)
    times = @ignore_derivatives isempty(saveat) ? [last(prob.tspan)] : collect(saveat)
    return solve(
        prob,
        s.alg;
        sensealg = s.sensealg,
        saveat = times,
        save_end = true,
        adaptive = s.adaptive,
        reltol = s.reltol,
        abstol = s.abstol,
        dt = s.dt,
        maxiters = s.maxiters,
        controller = s.controller,
    )
end

"""
    solver_options(; solver, rtol, atol, gradient, dt, max_steps, t1, device) -> SolverOptions

Build the solve settings from the fields of pyanode's `SolverSpec`.

## Keyword Arguments

  - `solver`: `"bosh3"`, `"dp5"`, `"tsit5"` (adaptive: `BS3`, `DP5`, `Tsit5`, with the
    controller of [`step_controller`](@ref)) or `"euler"`, `"midpoint"`, `"rk4"` (run with the
    fixed step `dt`).
  - `rtol`, `atol`: tolerances of the adaptive solvers.
  - `gradient`: see [`sensealg_from_name`](@ref).
  - `dt`: the fixed step, or the first step of an adaptive solver (`nothing`: automatic).
  - `max_steps`: the step budget (`maxiters`); exceeding it raises [`SolverFailure`](@ref).
  - `t1`: end time of the flow (`t0 = 0`).
  - `device`: an MLDataDevices device (chooses the backprop algorithm).

## Throws

  - `OptionError` for an unknown solver or gradient, a fixed-step solver without `dt`, or a
    non-positive tolerance, step or end time.
"""
function solver_options(;
    solver::AbstractString,
    rtol::Real,
    atol::Real,
    gradient::AbstractString,
    dt::Union{Nothing, Real},
    max_steps::Integer,
    t1::Real,
    device,
)
    rtol > 0 || throw(OptionError("solver.rtol", string(rtol), String[], "use a value > 0"))
    atol >= 0 ||
        throw(OptionError("solver.atol", string(atol), String[], "use a value >= 0"))
    max_steps > 0 ||
        throw(OptionError(
            "solver.max_steps",
            string(max_steps),
            String[],
            "use a value > 0",
        ))
    t1 > 0 || throw(OptionError("solver.t1", string(t1), String[], "use a value > 0"))
    dt === nothing ||
        dt > 0 ||
        throw(OptionError("solver.dt", string(dt), String[], "use a value > 0"))
    sensealg = sensealg_from_name(gradient, device, rtol, atol)
    tspan = (0.0f0, Float32(t1))
    step = dt === nothing ? nothing : Float32(dt)
    if haskey(ADAPTIVE_SOLVERS, solver)
        alg = ADAPTIVE_SOLVERS[solver]()
        return SolverOptions(
            alg,
            sensealg,
            tspan,
            true,
            Float32(rtol),
            Float32(atol),
            step,
            Int(max_steps),
            step_controller(),
        )
    elseif haskey(FIXED_STEP_SOLVERS, solver)
        step === nothing &&
            throw(OptionError(
                "solver.dt",
                "nothing",
                String[],
                "solver $(repr(solver)) has no error estimate, so it needs a fixed step dt",
            ))
        alg = FIXED_STEP_SOLVERS[solver]()
        return SolverOptions(
            alg,
            sensealg,
            tspan,
            false,
            Float32(rtol),
            Float32(atol),
            step,
            Int(max_steps),
            nothing,
        )
    end
    accepted = sort!(vcat(
        collect(keys(ADAPTIVE_SOLVERS)),
        collect(keys(FIXED_STEP_SOLVERS)),
    ))
    throw(OptionError("solver.solver", solver, accepted))
end
