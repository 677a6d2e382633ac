# The discrete baseline: a ResNet whose residual branch is the NODE's MLP field without time.

"""
    ResidualBlocks(blocks)

`depth` residual blocks h <- h + f(h), each a Lux `SkipConnection(mlp, +)` with the MLP of
[`mlp_field`](@ref) (an Euler step of a NODE, the torch backend's `ResNet`), in a `Chain`. It
takes the block input `(z0, x)` of [`ODEClassifier`](@ref) and ignores x.

## Parameters

The `Chain`'s: `layer_i` is block i, whose `layer_1 .. layer_3` are its dense layers.
"""
struct ResidualBlocks{C} <: AbstractLuxWrapperLayer{:blocks}
    blocks::C
end

(r::ResidualBlocks)(input::Tuple, ps, st::NamedTuple) = r.blocks(first(input), ps, st)

"""
    residual_blocks(state_dims, hidden, activation, depth) -> ResidualBlocks

`depth` blocks `h + mlp(h)` with `mlp = state_dims => hidden => activation => hidden =>
activation => state_dims`.
"""
function residual_blocks(state_dims::Integer, hidden::Integer, activation, depth::Integer)
    blocks = [
        SkipConnection(mlp_field(state_dims, hidden, state_dims, activation), +)
        for _ in 1:depth
    ]
    return ResidualBlocks(Chain(blocks...))
end

function time_span(::ResidualBlocks)
    throw(ArgumentError(
        "a ResNet (model.kind = \"resnet\") has no continuous trajectories; use " *
            "features for its last state",
    ))
end
