# Depth-variant layers: weights theta(t) = sum_k theta_k phi_k(t) on a truncated basis (the
# Galerkin NODEs of Massaroli et al. 2020, "Overcoming Limitations of Neural ODEs" §3.1).

"""
    GalerkinDense(in_dims => out_dims, basis, activation = identity)

An affine layer whose weights depend on depth: `y = activation.(W(t) h .+ b(t))` with
`W(t) = sum_k phi_k(t) W_k` and `b(t) = sum_k phi_k(t) b_k` (the torch backend's
`GalerkinLinear`).

## Arguments

  - `in_dims => out_dims`: the sizes of h and y.
  - `basis`: an [`AbstractBasis`](@ref), which fixes the number K of coefficients.
  - `activation`: applied elementwise to the output.

## Input

  - `(h, phi)`: h (in_dims, batch) and the basis values phi (K,) at the layer's depth t, on
    h's device (the ODE block evaluates the basis once for all layers).

## Returns

  - (out_dims, batch) and the unchanged state.

## Parameters

  - `weight`: the coefficients W_k as an (out_dims, in_dims, K) array; W_k = `weight[:, :, k]`.
  - `bias`: the coefficients b_k as an (out_dims, K) array.

Both start uniform in `±1 / sqrt(in_dims * n_active(basis))`, so that W(t) starts about as
large as a `Dense` weight. In the shared flat order the layer is W_0, ..., W_{K-1} (each
row-major), then b_0, ..., b_{K-1}: torch's (K, out, in) and (K, out) tensors flattened.
"""
struct GalerkinDense{B <: AbstractBasis, F} <: AbstractLuxLayer
    in_dims::Int
    out_dims::Int
    basis::B
    activation::F
end

function GalerkinDense(
    mapping::Pair{<:Integer, <:Integer},
    basis::AbstractBasis,
    activation = identity,
)
    return GalerkinDense(Int(first(mapping)), Int(last(mapping)), basis, activation)
end

function LuxCore.initialparameters(rng::AbstractRNG, l::GalerkinDense)
    k = n_terms(l.basis)
    bound = 1.0f0 / sqrt(Float32(l.in_dims * n_active(l.basis)))
    weight = bound .* (2 .* rand(rng, Float32, l.out_dims, l.in_dims, k) .- 1)
    bias = bound .* (2 .* rand(rng, Float32, l.out_dims, k) .- 1)
    return (; weight, bias)
end

LuxCore.initialstates(::AbstractRNG, ::GalerkinDense) = NamedTuple()

function (l::GalerkinDense)(input::Tuple, ps, st::NamedTuple)
    h, phi = input
    weight = reshape(reshape(ps.weight, :, length(phi)) * phi, l.out_dims, l.in_dims)
    bias = ps.bias * phi
    return l.activation.(weight * h .+ bias), st
end

"""
    DepthVariantField(layer_1, layer_2, layer_3)

The MLP field of Dupont et al. (2019, App. E) with depth-variant weights, every affine map a
[`GalerkinDense`](@ref) on the same basis: `in => hidden => act => hidden => act => out`.

## Input

  - `(h, phi)`: the field's input h (see [`FieldInput`](@ref)) and the basis values at t.

## Parameters

`(layer_1, layer_2, layer_3)`, each `weight` (out, in, K) and `bias` (out, K).
"""
struct DepthVariantField{L1, L2, L3} <:
    AbstractLuxContainerLayer{(:layer_1, :layer_2, :layer_3)}
    layer_1::L1
    layer_2::L2
    layer_3::L3
end

function (f::DepthVariantField)(input::Tuple, ps, st::NamedTuple)
    h, phi = input
    h1, st_1 = f.layer_1((h, phi), ps.layer_1, st.layer_1)
    h2, st_2 = f.layer_2((h1, phi), ps.layer_2, st.layer_2)
    out, st_3 = f.layer_3((h2, phi), ps.layer_3, st.layer_3)
    return out, (; layer_1 = st_1, layer_2 = st_2, layer_3 = st_3)
end

"""
    depth_variant_field(in_dims, hidden, out_dims, activation, basis) -> DepthVariantField

The depth-variant MLP field `in_dims => hidden => activation => hidden => activation =>
out_dims` on `basis` (torch: `DepthVariantField`).
"""
function depth_variant_field(
    in_dims::Integer,
    hidden::Integer,
    out_dims::Integer,
    activation,
    basis::AbstractBasis,
)
    return DepthVariantField(
        GalerkinDense(in_dims => hidden, basis, activation),
        GalerkinDense(hidden => hidden, basis, activation),
        GalerkinDense(hidden => out_dims, basis),
    )
end

"""
    field_jump_times(field) -> Vector{Float64}

Where the field's weights jump: the break points of a piecewise-constant basis, none for any
other field.
"""
field_jump_times(::Any) = Float64[]
field_jump_times(f::DepthVariantField) = jump_times(f.layer_1.basis)

"""
    evaluate_field(field, h, t, piece, like, p, st) -> AbstractMatrix

The field's output for the input h at time t inside the solve of `piece`. A depth-variant
field gets its basis values (on the device and in the type of `like`, a plain array the block
made); any other field is called on h alone. The basis values do not depend on the state or the
parameters, so no gradient flows through them.
"""
evaluate_field(field, h, t, piece, like, p, st) = first(field(h, p, st))

function evaluate_field(field::DepthVariantField, h, t, piece, like, p, st)
    phi = @ignore_derivatives device_basis(field.layer_1.basis, t, piece, like)
    return first(field((h, phi), p, st))
end

"""
    device_basis(basis, t, piece, like) -> AbstractVector

[`basis_on_piece`](@ref) copied into a vector like `like` (same device and element type).
"""
function device_basis(basis::AbstractBasis, t, piece::Integer, like::AbstractArray)
    values = basis_on_piece(basis, t, piece)
    return copyto!(similar(like, length(values)), values)
end
