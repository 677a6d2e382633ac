# The networks of the papers: input map, ODE block, linear head (the generalised IVP of
# Massaroli et al. 2020), built from the fields of pyanode's ModelSpec.

"""
    ODEClassifier(input_map, block, head)

x -> head(block(input_map(x), x)): NODE (`input_map` = identity), ANODE (`Augment`), IL-NODE
(a learned `Dense` input map, Massaroli et al. 2020), data-controlled (the block also reads x).

## Parameters

`(input_map, block, head)`, in forward order: the flat parameter order of
[`ps_to_flat`](@ref) follows it.
"""
struct ODEClassifier{I, B <: NeuralODE, H} <:
    AbstractLuxContainerLayer{(:input_map, :block, :head)}
    input_map::I
    block::B
    head::H
end

function (m::ODEClassifier)(x, ps, st::NamedTuple)
    z0, st_input = m.input_map(x, ps.input_map, st.input_map)
    zT, st_block = m.block((z0, x), ps.block, st.block)
    y, st_head = m.head(zT, ps.head, st.head)
    return y, (; input_map = st_input, block = st_block, head = st_head)
end

"""
    initial_state(model, x, ps, st) -> AbstractMatrix

z(0) = input_map(x): the state the ODE block starts from.
"""
initial_state(m::ODEClassifier, x, ps, st) = first(m.input_map(
    x,
    ps.input_map,
    st.input_map,
))

"""
    zero_augment(in_dims, state_dims)

Identity when `state_dims == in_dims`, else [`Augment`](@ref) with the difference.
"""
function zero_augment(in_dims::Integer, state_dims::Integer)
    return state_dims == in_dims ? NoOpLayer() : Augment(state_dims - in_dims)
end

linear_input_map(in_dims::Integer, state_dims::Integer) = Dense(in_dims => state_dims)

const INPUT_MAPS = Dict{String, Function}(
    "node" => zero_augment,
    "anode" => zero_augment,
    "data-controlled" => zero_augment,
    "il-node" => linear_input_map,
)
const CONTROLLED_KINDS = ("data-controlled",)
const TORCH_ONLY_KINDS = ("resnet", "chebyshev", "fourier", "stacked", "adaptive-depth")

"""
    build_model(kind; in_dims, out_dims, hidden, augment_dim, activation, time_dependent,
        solver, counter) -> ODEClassifier

The model `kind` with state dimension `in_dims + augment_dim`, the MLP field of
[`mlp_field`](@ref) and a `Dense(state_dims => out_dims)` head, exactly as the torch backend
builds it (so one flat parameter vector fits both).

## Arguments

  - `kind`: `"node"`, `"anode"`, `"il-node"` or `"data-controlled"`.

## Keyword Arguments

  - `in_dims`, `out_dims`: input features and outputs (classes or targets).
  - `hidden`: width of the field's hidden layers.
  - `augment_dim`: zeros appended (node, anode, data-controlled) or extra latent dimensions of
    the learned input map (il-node).
  - `activation`: see [`activation_from_name`](@ref).
  - `time_dependent`: append t to the field's input.
  - `solver`: a [`SolverOptions`](@ref).
  - `counter`: the [`NFECounter`](@ref) of the block.

## Throws

  - `OptionError` for an unknown kind, a torch-only kind, `anode` without augmentation or a
    non-positive size.
"""
function build_model(
    kind::AbstractString;
    in_dims::Integer,
    out_dims::Integer,
    hidden::Integer,
    augment_dim::Integer,
    activation::AbstractString,
    time_dependent::Bool,
    solver::SolverOptions,
    counter::NFECounter,
)
    kind in TORCH_ONLY_KINDS &&
        throw(OptionError(
            "model.kind",
            kind,
            sort!(collect(keys(INPUT_MAPS))),
            "this kind is only in the torch backend so far; use backend = \"torch\"",
        ))
    haskey(INPUT_MAPS, kind) ||
        throw(OptionError("model.kind", kind, sort!(collect(keys(INPUT_MAPS)))))
    for (name, value) in (
            ("in_dims", in_dims),
            ("out_dims", out_dims),
            ("model.hidden", hidden),
        )
        value > 0 || throw(OptionError(name, string(value), String[], "use a value > 0"))
    end
    augment_dim >= 0 ||
        throw(OptionError(
            "model.augment_dim",
            string(augment_dim),
            String[],
            "use a value >= 0",
        ))
    kind == "anode" &&
        augment_dim == 0 &&
        throw(OptionError(
            "model.augment_dim",
            "0",
            String[],
            "kind \"anode\" needs augment_dim > 0 (use kind \"node\" for none)",
        ))
    state_dims = in_dims + augment_dim
    input = FieldInput(kind in CONTROLLED_KINDS, time_dependent)
    field = mlp_field(
        field_in_dims(input, state_dims, in_dims),
        hidden,
        state_dims,
        activation_from_name(activation),
    )
    block = NeuralODE(field, input, solver, counter)
    return ODEClassifier(
        INPUT_MAPS[kind](in_dims, state_dims),
        block,
        Dense(state_dims => out_dims),
    )
end
