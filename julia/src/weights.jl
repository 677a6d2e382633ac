# One flat Float32 vector of parameters, in the order shared with the torch backend.
#
# Order (docs/architecture.md): layers in forward order; for each, the weight then the bias, as
# torch's `weight.flatten()` and `bias.flatten()`:
#   Dense:         W (out, in) row-major, then b (out). Lux stores W as (out, in) column-major,
#                  so the segment is `vec(permutedims(W))` and reads back as
#                  `permutedims(reshape(segment, in, out))`.
#   GalerkinDense: torch's W (K, out, in) and b (K, out), i.e. W_0 ... W_{K-1} each row-major,
#                  then b_0 ... b_{K-1}. Julia stores W as (out, in, K) and b as (out, K), so the
#                  weight segment is `vec(permutedims(W, (2, 1, 3)))` (each W_k transposed) and
#                  the bias segment is `vec(b)` as it is.

"""
    parameter_count(template) -> Int

Number of parameters in a parameter `NamedTuple` (as returned by `LuxCore.setup`).
"""
function parameter_count(template::NamedTuple)
    is_dense(template) && return sum(length, values(template))
    return sum(parameter_count, values(template); init = 0)
end

is_dense(template::NamedTuple) = haskey(template, :weight)

"""
    ps_to_flat(ps, template) -> Vector{Float32}

The parameters `ps` (a `NamedTuple`, a `ComponentArray`, a gradient of either, on any device)
as one vector in the shared order. `template` (the CPU parameters from `LuxCore.setup`) fixes
the structure; parts missing from `ps` (a `nothing` gradient) are zeros.
"""
function ps_to_flat(ps, template::NamedTuple)
    out = Float32[]
    append_flat!(out, ps, template)
    return out
end

function append_flat!(out::Vector{Float32}, source, template::NamedTuple)
    if is_dense(template)
        weight = dense_part(source, :weight, template.weight)
        append!(out, row_major(weight))
        haskey(template, :bias) &&
            append!(out, vec(dense_part(source, :bias, template.bias)))
        return out
    end
    for key in keys(template)
        sub = template[key]
        isempty(sub) && continue # layers without parameters (Augment, NoOpLayer)
        append_flat!(out, child(source, key), sub)
    end
    return out
end

child(::Nothing, ::Symbol) = nothing
child(source, key::Symbol) = getproperty(source, key)

dense_part(::Nothing, ::Symbol, like::AbstractArray) = zero(like)
function dense_part(source, key::Symbol, like::AbstractArray)
    value = getproperty(source, key)
    value === nothing && return zero(like)
    return reshape(Array{Float32}(value), size(like))
end

"""
    flat_to_ps(v, template) -> NamedTuple

The inverse of [`ps_to_flat`](@ref): a parameter `NamedTuple` shaped like `template`, filled
from the flat vector `v` (any real vector, e.g. a numpy array from Python).

## Throws

  - `DimensionMismatch` if `length(v)` is not the model's parameter count.
"""
function flat_to_ps(v::AbstractVector{<:Real}, template::NamedTuple)
    n = parameter_count(template)
    length(v) == n ||
        throw(DimensionMismatch(
            "the flat parameter vector has length " *
                "$(length(v)) but this model has $n parameters (per layer: weight (out, in) " *
                "row-major, or (K, out, in) for a GalerkinDense, then bias; layers in " *
                "forward order)",
        ))
    return unflatten(Vector{Float32}(v), template, Ref(0))
end

function unflatten(v::Vector{Float32}, template::NamedTuple, offset::Base.RefValue{Int})
    is_dense(template) && return unflatten_dense(v, template, offset)
    names = keys(template)
    return NamedTuple{names}(Tuple(unflatten(v, template[key], offset) for key in names))
end

"""
    row_major(weight) -> Vector{Float32}

A weight in the shared order: each (out, in) matrix row-major (torch's `flatten()` of an
(out, in) or a (K, out, in) tensor). Julia's (out, in) or (out, in, K) arrays are column-major,
so this transposes each matrix.
"""
row_major(weight::AbstractMatrix) = vec(permutedims(weight))
row_major(weight::AbstractArray{<:Real, 3}) = vec(permutedims(weight, (2, 1, 3)))

"""
    from_row_major(segment, dims) -> Array{Float32}

The inverse of [`row_major`](@ref): the weight of size `dims` ((out, in) or (out, in, K)).
"""
function from_row_major(segment::Vector{Float32}, dims::Tuple{Int, Int})
    return permutedims(reshape(segment, dims[2], dims[1]))
end
function from_row_major(segment::Vector{Float32}, dims::Tuple{Int, Int, Int})
    return permutedims(reshape(segment, dims[2], dims[1], dims[3]), (2, 1, 3))
end

function unflatten_dense(
    v::Vector{Float32},
    template::NamedTuple,
    offset::Base.RefValue{Int},
)
    dims = size(template.weight)
    weight = from_row_major(take_segment!(v, offset, prod(dims)), dims)
    haskey(template, :bias) || return (; weight)
    bias = reshape(take_segment!(v, offset, length(template.bias)), size(template.bias))
    return (; weight, bias)
end

function take_segment!(v::Vector{Float32}, offset::Base.RefValue{Int}, n::Integer)
    segment = v[(offset[] + 1):(offset[] + n)]
    offset[] += n
    return segment
end
