# Typed exceptions of PyANODE: each message names the setting, the value and the fix.

"""
    OptionError(setting, value, accepted, hint)

A setting (`model.kind`, `solver.solver`, `solver.gradient`, `train.device`, ...) has a value
the Julia backend does not accept.

## Arguments

  - `setting`: the spec field, e.g. `"solver.gradient"`.
  - `value`: the value received, as text.
  - `accepted`: the accepted values.
  - `hint`: what to do instead (may be empty).
"""
struct OptionError <: Exception
    setting::String
    value::String
    accepted::Vector{String}
    hint::String
end

OptionError(setting, value, accepted) = OptionError(setting, value, accepted, "")

function Base.showerror(io::IO, err::OptionError)
    print(io, "OptionError: ", err.setting, " = ", repr(err.value), " is not accepted")
    isempty(err.accepted) || print(io, "; accepted: ", join(err.accepted, ", "))
    isempty(err.hint) || print(io, ". ", err.hint)
    return nothing
end

"""
    SolverFailure(reason, retcode, t, nfe)

An ODE solve of the block stopped before `t1`.

## Arguments

  - `reason`: `"max_steps"`, `"dt_underflow"`, `"nonfinite"` (the names of pyanode's
    `SolverError`) or `"solver_failure"` for any other return code.
  - `retcode`: SciMLBase's return code, as text.
  - `t`: the time the solver had reached (`NaN` when unknown).
  - `nfe`: vector-field evaluations spent by the failed solve.
"""
struct SolverFailure <: Exception
    reason::String
    retcode::String
    t::Float64
    nfe::Int
end

const FAILURE_FIXES = Dict(
    "max_steps" =>
        "increase solver.max_steps, loosen solver.rtol/atol, or check for a " *
            "stiff or exploding vector field",
    "dt_underflow" =>
        "the solution is probably blowing up or the problem is stiff; check the " *
            "vector field or loosen solver.rtol/atol",
    "nonfinite" =>
        "the vector field returned NaN or Inf; check its weights, the learning " *
            "rate and the input",
    "solver_failure" => "see the return code in the SciMLBase documentation",
)

function Base.showerror(io::IO, err::SolverFailure)
    print(
        io,
        "SolverFailure: the ODE solve stopped at t = ",
        err.t,
        " with return code ",
        err.retcode,
        " after ",
        err.nfe,
        " evaluations: ",
        FAILURE_FIXES[err.reason],
    )
    return nothing
end

"""
    failure_reason(retcode) -> String

Map a SciMLBase return code (as text) to the failure names of pyanode's `SolverError`.
"""
function failure_reason(retcode::AbstractString)
    occursin("MaxIters", retcode) && return "max_steps"
    occursin("DtLessThanMin", retcode) && return "dt_underflow"
    (occursin("DtNaN", retcode) || occursin("Unstable", retcode)) && return "nonfinite"
    return "solver_failure"
end

"""
    DeviceError(device, hint)

The requested device cannot be used, e.g. `"cuda"` without a functional CUDA.jl.
"""
struct DeviceError <: Exception
    device::String
    hint::String
end

function Base.showerror(io::IO, err::DeviceError)
    print(
        io,
        "DeviceError: train.device = ",
        repr(err.device),
        " is not usable: ",
        err.hint,
    )
    return nothing
end
