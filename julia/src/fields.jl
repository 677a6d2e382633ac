# Vector fields f(t, z, x) of the ODE block: one builder per kind of field.
#
# The depth-variant fields of the survey (Chebyshev / Fourier bases, stacked pieces) and the
# adaptive-depth block are not in the Julia backend yet; they belong here, as one builder each.

"""
    FieldInput(control, time)

How the field's input is assembled from the state `z`, the block input `x` and the time `t`:
`[z; x; t]`, keeping `x` only for a data-controlled field (Massaroli et al. 2020) and `t` only
for a time-dependent one (t appended as the last input row, Dupont et al. 2019, App. E). The
order is the torch backend's, so that the same weights give the same field.
"""
struct FieldInput
    control::Bool
    time::Bool
end

"""
    field_in_dims(input, state_dims, control_dims) -> Int

Rows of the field's input: `state_dims`, plus `control_dims` when data-controlled, plus one for
the time.
"""
function field_in_dims(input::FieldInput, state_dims::Integer, control_dims::Integer)
    return state_dims + (input.control ? control_dims : 0) + (input.time ? 1 : 0)
end

"""
    assemble(input, u, x, ones_row, t) -> AbstractMatrix

The field's input for state `u` (state_dims, batch), block input `x` (control_dims, batch) and
time `t`; `ones_row` is a (1, batch) row of ones on `u`'s device, scaled by `t`.
"""
function assemble(input::FieldInput, u, x, ones_row, t)
    if input.control && input.time
        return vcat(u, x, ones_row .* t)
    elseif input.control
        return vcat(u, x)
    elseif input.time
        return vcat(u, ones_row .* t)
    end
    return u
end

const ACTIVATIONS = Dict{String, Function}(
    "relu" => relu,
    "tanh" => tanh,
    "softplus" => softplus,
    "elu" => elu,
    "sigmoid" => sigmoid,
)

"""
    activation_from_name(name) -> Function

The activation called `name` (`relu`, `tanh`, `softplus`, `elu`, `sigmoid`, as torch's).

## Throws

  - `OptionError` for an unknown name.
"""
function activation_from_name(name::AbstractString)
    haskey(ACTIVATIONS, name) && return ACTIVATIONS[name]
    throw(OptionError("model.activation", name, sort!(collect(keys(ACTIVATIONS)))))
end

"""
    mlp_field(in_dims, hidden, out_dims, activation) -> Chain

The MLP vector field of Dupont et al. (2019, App. E):
`in_dims => hidden => activation => hidden => activation => out_dims`.

## Parameters

Three `Dense` layers, `weight` (out, in) and `bias` (out) each, in forward order.
"""
function mlp_field(in_dims::Integer, hidden::Integer, out_dims::Integer, activation)
    return Chain(
        Dense(in_dims => hidden, activation),
        Dense(hidden => hidden, activation),
        Dense(hidden => out_dims),
    )
end
