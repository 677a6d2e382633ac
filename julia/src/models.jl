# The networks of the papers: input map, block, linear head (the generalised IVP of Massaroli
# et al. 2020), built from the fields of pyanode's ModelSpec.

"""
    ODEClassifier(input_map, block, head)

x -> head(block(input_map(x), x)) for every model kind: NODE (`input_map` = identity), ANODE
(`Augment`), IL-NODE (a learned `Dense` input map, Massaroli et al. 2020), data-controlled
(the block also reads x), the depth-variant NODEs (a [`NeuralODE`](@ref) with a
[`DepthVariantField`](@ref)), adaptive depth (an [`AdaptiveDepthNODE`](@ref), whose end times
read x) and the discrete ResNet baseline ([`ResidualBlocks`](@ref), which ignores x).

## Parameters

`(input_map, block, head)`, in forward order: the flat parameter order of
[`ps_to_flat`](@ref) follows it.
"""
struct ODEClassifier{I, B, H} <: AbstractLuxContainerLayer{(:input_map, :block, :head)}
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

z(0) = input_map(x): the state the block starts from.
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

"""
    ModelSettings

The fields of pyanode's `ModelSpec` (and the solve settings) that a block builder reads:
`in_dims`, `state_dims`, `hidden`, `activation` (a function), `time_dependent`, `degree`,
`n_pieces`, `depth`, `solver` (a [`SolverOptions`](@ref)) and `counter`.
"""
const ModelSettings = NamedTuple{(
    :in_dims,
    :state_dims,
    :hidden,
    :activation,
    :time_dependent,
    :degree,
    :n_pieces,
    :depth,
    :solver,
    :counter,
)}

"""
    ode_block(s, control) -> NeuralODE

The MLP field of [`mlp_field`](@ref) in a [`NeuralODE`](@ref); `control`: data-controlled.
"""
function ode_block(s::ModelSettings, control::Bool)
    input = FieldInput(control, s.time_dependent)
    n_in = field_in_dims(input, s.state_dims, s.in_dims)
    field = mlp_field(n_in, s.hidden, s.state_dims, s.activation)
    return NeuralODE(field, input, s.solver, s.counter)
end

"""
    depth_variant_block(s, basis) -> NeuralODE

A [`DepthVariantField`](@ref) on `basis` in a [`NeuralODE`](@ref) (not data-controlled).
"""
function depth_variant_block(s::ModelSettings, basis::AbstractBasis)
    input = FieldInput(false, s.time_dependent)
    n_in = field_in_dims(input, s.state_dims, s.in_dims)
    field = depth_variant_field(n_in, s.hidden, s.state_dims, s.activation, basis)
    return NeuralODE(field, input, s.solver, s.counter)
end

"""
    adaptive_depth_block(s) -> AdaptiveDepthNODE

g_omega of [`depth_net`](@ref) on the block's input, the MLP field, and the solve on
s in [0, 1] of [`rescaled_options`](@ref).

## Throws

  - `OptionError` when `solver.t1 <= T_MIN` (T(x) starts near t1 and never goes below t_min).
"""
function adaptive_depth_block(s::ModelSettings)
    t1 = Float64(last(s.solver.tspan))
    t1 > T_MIN ||
        throw(OptionError(
            "solver.t1",
            string(t1),
            String[],
            "adaptive-depth needs solver.t1 > t_min = $(T_MIN) (T(x) starts near t1)",
        ))
    input = FieldInput(false, s.time_dependent)
    field = mlp_field(
        field_in_dims(input, s.state_dims, s.in_dims),
        s.hidden,
        s.state_dims,
        s.activation,
    )
    return AdaptiveDepthNODE(
        depth_net(s.in_dims, s.hidden, s.activation, t1, T_MIN),
        field,
        input,
        rescaled_options(s.solver, s.state_dims),
        s.counter,
        T_MIN,
    )
end

basis_t1(s::ModelSettings) = Float64(last(s.solver.tspan))

# ModelSpec kind -> (settings -> block)
const BLOCKS = Dict{String, Function}(
    "node" => s -> ode_block(s, false),
    "anode" => s -> ode_block(s, false),
    "il-node" => s -> ode_block(s, false),
    "data-controlled" => s -> ode_block(s, true),
    "chebyshev" => s -> depth_variant_block(s, ChebyshevBasis(s.degree, basis_t1(s))),
    "fourier" => s -> depth_variant_block(s, FourierBasis(s.degree, basis_t1(s))),
    "stacked" =>
        s -> depth_variant_block(s, PiecewiseConstantBasis(s.n_pieces, basis_t1(s))),
    "adaptive-depth" => adaptive_depth_block,
    "resnet" => s -> residual_blocks(s.state_dims, s.hidden, s.activation, s.depth),
)

"""
    check_sizes(kind; in_dims, out_dims, hidden, augment_dim, degree, n_pieces, depth)

Throw an `OptionError` naming the first size `kind` reads that is out of range.
"""
function check_sizes(
    kind::AbstractString;
    in_dims::Integer,
    out_dims::Integer,
    hidden::Integer,
    augment_dim::Integer,
    degree::Integer,
    n_pieces::Integer,
    depth::Integer,
)
    positive = [("in_dims", in_dims), ("out_dims", out_dims), ("model.hidden", hidden)]
    kind == "stacked" && push!(positive, ("model.n_pieces", n_pieces))
    kind == "resnet" && push!(positive, ("model.depth", depth))
    for (name, value) in positive
        value > 0 || throw(OptionError(name, string(value), String[], "use a value > 0"))
    end
    non_negative = [("model.augment_dim", augment_dim)]
    kind in ("chebyshev", "fourier") && push!(non_negative, ("model.degree", degree))
    for (name, value) in non_negative
        value >= 0 || throw(OptionError(name, string(value), String[], "use a value >= 0"))
    end
    kind == "anode" &&
        augment_dim == 0 &&
        throw(OptionError(
            "model.augment_dim",
            "0",
            String[],
            "kind \"anode\" needs augment_dim > 0 (use kind \"node\" for none)",
        ))
    return nothing
end

"""
    build_model(kind; in_dims, out_dims, hidden, augment_dim, activation, time_dependent,
        degree, n_pieces, depth, solver, counter) -> ODEClassifier

The model `kind` with state dimension `in_dims + augment_dim` and a `Dense(state_dims =>
out_dims)` head, exactly as the torch backend builds it (so one flat parameter vector fits
both).

## Arguments

  - `kind`: `"node"`, `"anode"`, `"il-node"`, `"data-controlled"` (the MLP field of
    [`mlp_field`](@ref)), `"chebyshev"`, `"fourier"`, `"stacked"` (its depth-variant version
    on [`ChebyshevBasis`](@ref), [`FourierBasis`](@ref), [`PiecewiseConstantBasis`](@ref)),
    `"adaptive-depth"` ([`AdaptiveDepthNODE`](@ref)) or `"resnet"`
    ([`ResidualBlocks`](@ref)).

## Keyword Arguments

  - `in_dims`, `out_dims`: input features and outputs (classes or targets).
  - `hidden`: width of the field's hidden layers.
  - `augment_dim`: zeros appended (every kind but il-node) or extra latent dimensions of the
    learned input map (il-node).
  - `activation`: see [`activation_from_name`](@ref).
  - `time_dependent`: append t to the field's input (not read by resnet).
  - `degree`: highest Chebyshev degree or Fourier harmonic (chebyshev, fourier).
  - `n_pieces`: pieces of the stacked NODE (stacked).
  - `depth`: residual blocks (resnet).
  - `solver`: a [`SolverOptions`](@ref); its t1 is also the end of the bases' interval.
  - `counter`: the [`NFECounter`](@ref) of the block.

## Throws

  - `OptionError` for an unknown kind, `anode` without augmentation, a size out of range, or
    adaptive-depth with `t1 <= T_MIN`.
"""
function build_model(
    kind::AbstractString;
    in_dims::Integer,
    out_dims::Integer,
    hidden::Integer,
    augment_dim::Integer,
    activation::AbstractString,
    time_dependent::Bool,
    degree::Integer,
    n_pieces::Integer,
    depth::Integer,
    solver::SolverOptions,
    counter::NFECounter,
)
    haskey(BLOCKS, kind) ||
        throw(OptionError("model.kind", kind, sort!(collect(keys(BLOCKS)))))
    check_sizes(kind; in_dims, out_dims, hidden, augment_dim, degree, n_pieces, depth)
    state_dims = in_dims + augment_dim
    settings = (;
        in_dims = Int(in_dims),
        state_dims = Int(state_dims),
        hidden = Int(hidden),
        activation = activation_from_name(activation),
        time_dependent,
        degree = Int(degree),
        n_pieces = Int(n_pieces),
        depth = Int(depth),
        solver,
        counter,
    )
    input_map = kind == "il-node" ?
        Dense(in_dims => state_dims) :
        zero_augment(in_dims, state_dims)
    return ODEClassifier(input_map, BLOCKS[kind](settings), Dense(state_dims => out_dims))
end
