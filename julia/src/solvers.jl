# Solver and gradient (sensealg) choices: the one place where their names become objects.

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
    sensealg_from_name(name, device)

The SciMLSensitivity algorithm for the gradient method `name`:

  - `"backprop"`: discrete adjoint, differentiating through the solver's steps:
    `ReverseDiffAdjoint()` on the CPU (it needs CPU `Array` states) and `TrackerAdjoint()` on
    a GPU. (`ZygoteAdjoint` exists but its docstring says it fails on almost every solver.)
  - `"adjoint"`: `BacksolveAdjoint` (Chen et al. 2018: solve the state backwards with the
    adjoint).
  - `"interpolating-adjoint"`, `"quadrature-adjoint"`, `"gauss-adjoint"`: SciMLSensitivity's
    `InterpolatingAdjoint`, `QuadratureAdjoint`, `GaussAdjoint`.

The continuous adjoints always get `autojacvec = ZygoteVJP()`: the automatic choice can pick
`EnzymeVJP`, which crashes on a Lux right-hand side (SciMLSensitivity #1512), and only
`ZygoteVJP` works on a GPU.

## Throws

  - `OptionError` for an unknown name.
"""
function sensealg_from_name(name::AbstractString, device)
    name == "backprop" &&
        return device isa CPUDevice ? ReverseDiffAdjoint() : TrackerAdjoint()
    name == "adjoint" && return BacksolveAdjoint(; autojacvec = ZygoteVJP())
    name == "interpolating-adjoint" &&
        return InterpolatingAdjoint(; autojacvec = ZygoteVJP())
    name == "quadrature-adjoint" && return QuadratureAdjoint(; autojacvec = ZygoteVJP())
    name == "gauss-adjoint" && return GaussAdjoint(; autojacvec = ZygoteVJP())
    throw(OptionError("solver.gradient", name, collect(GRADIENTS)))
end

"""
    SolverOptions(alg, sensealg, tspan, kwargs)

Everything the ODE block passes to `solve`: the algorithm, the sensitivity algorithm, the time
span `(0, t1)` in `Float32` and the keyword arguments (tolerances, step budget, fixed step).
"""
struct SolverOptions{A, S, K <: NamedTuple}
    alg::A
    sensealg::S
    tspan::Tuple{Float32, Float32}
    kwargs::K
end

"""
    solver_options(; solver, rtol, atol, gradient, dt, max_steps, t1, device) -> SolverOptions

Build the solve settings from the fields of pyanode's `SolverSpec`.

## Keyword Arguments

  - `solver`: `"bosh3"`, `"dp5"`, `"tsit5"` (adaptive: `BS3`, `DP5`, `Tsit5`) or `"euler"`,
    `"midpoint"`, `"rk4"` (run with the fixed step `dt`).
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
    sensealg = sensealg_from_name(gradient, device)
    tspan = (0.0f0, Float32(t1))
    if haskey(ADAPTIVE_SOLVERS, solver)
        alg = ADAPTIVE_SOLVERS[solver]()
        tolerances = (; reltol = Float32(rtol), abstol = Float32(atol), maxiters = Int(
            max_steps,
        ))
        kwargs = dt === nothing ? tolerances : merge(tolerances, (; dt = Float32(dt)))
        return SolverOptions(alg, sensealg, tspan, kwargs)
    elseif haskey(FIXED_STEP_SOLVERS, solver)
        dt === nothing &&
            throw(OptionError(
                "solver.dt",
                "nothing",
                String[],
                "solver $(repr(solver)) has no error estimate, so it needs a fixed step dt",
            ))
        alg = FIXED_STEP_SOLVERS[solver]()
        kwargs = (; adaptive = false, dt = Float32(dt), maxiters = Int(max_steps))
        return SolverOptions(alg, sensealg, tspan, kwargs)
    end
    accepted = sort!(vcat(
        collect(keys(ADAPTIVE_SOLVERS)),
        collect(keys(FIXED_STEP_SOLVERS)),
    ))
    throw(OptionError("solver.solver", solver, accepted))
end
