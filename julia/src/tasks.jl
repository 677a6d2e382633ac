# What the head's outputs mean: class logits (cross-entropy) or regression targets (MSE).

"""
    AbstractTask

Classification (`n_classes` logits, cross-entropy, `predict` gives probabilities) or regression
(`n_targets` outputs, mean squared error, `predict` gives the outputs).
"""
abstract type AbstractTask end

struct Classification <: AbstractTask
    n_classes::Int
end

struct Regression <: AbstractTask
    n_targets::Int
end

const LOSSES = Dict{String, Type}("cross-entropy" => Classification, "mse" => Regression)

"""
    task_from_loss(loss, out_dims) -> AbstractTask

`"cross-entropy"` -> `Classification(out_dims)`, `"mse"` -> `Regression(out_dims)`.

## Throws

  - `OptionError` for another loss name.
"""
function task_from_loss(loss::AbstractString, out_dims::Integer)
    haskey(LOSSES, loss) && return LOSSES[loss](out_dims)
    throw(OptionError(
        "train.loss",
        loss,
        sort!(collect(keys(LOSSES))),
        "\"auto\" is resolved on the Python side",
    ))
end

loss_function(::Classification) = CrossEntropyLoss(; logits = Val(true))
loss_function(::Regression) = MSELoss()

"""
    targets(task, y, n) -> Matrix{Float32}

Training targets for `n` samples: one-hot (n_classes, n) from 0-based integer labels, or the
(n_targets, n) regression targets as given (Python passes `y.T`).

## Throws

  - `ArgumentError` naming the first bad label, or `DimensionMismatch` for a wrong shape.
"""
function targets(task::Classification, y::AbstractVector{<:Integer}, n::Integer)
    length(y) == n || throw(DimensionMismatch("got $(length(y)) labels for $n samples"))
    onehot = zeros(Float32, task.n_classes, n)
    for (j, label) in enumerate(y)
        0 <= label < task.n_classes ||
            throw(ArgumentError(
                "label $label of sample $j is " *
                    "outside 0:$(task.n_classes - 1) (labels are 0-based class indices)",
            ))
        onehot[label + 1, j] = 1
    end
    return onehot
end

function targets(task::Regression, y::AbstractMatrix{<:Real}, n::Integer)
    size(y) == (task.n_targets, n) ||
        throw(DimensionMismatch(
            "regression targets have " *
                "shape $(size(y)); expected ($(task.n_targets), $n) (pass y.T from Python)",
        ))
    return Matrix{Float32}(y)
end

function targets(task::AbstractTask, y, ::Integer)
    throw(ArgumentError(
        "targets of type $(typeof(y)) do not fit a $(nameof(typeof(task))) " *
            "model: give 0-based integer labels (classification) or a (targets, samples) matrix",
    ))
end

"""
    output(task, raw) -> Matrix

Class probabilities (softmax over rows) for classification, the raw outputs for regression.
"""
output(::Classification, raw::AbstractMatrix) = softmax(raw; dims = 1)
output(::Regression, raw::AbstractMatrix) = raw

"""
    accuracy(task, raw, y) -> Float64

Fraction of samples whose largest logit is the 0-based label `y` (classification only).
"""
function accuracy(::Classification, raw::AbstractMatrix, y::AbstractVector{<:Integer})
    hits = count(j -> argmax(view(raw, :, j)) == y[j] + 1, axes(raw, 2))
    return hits / size(raw, 2)
end
