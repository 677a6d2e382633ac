# Predictions, features, trajectories and NFE of a trained handle (no gradients).

"""
    logits(h, X) -> Matrix{Float32}

The head's raw outputs (outputs, samples) on the CPU for the (features, samples) input `X`,
solved as one batch.
"""
function logits(h::ModelHandle, X::AbstractMatrix)
    x = h.device(checked_inputs(h, X))
    return cpu_device()(first(h.model(x, h.ps, h.st)))
end

"""
    predict_proba(h, X) -> Matrix{Float32}

Class probabilities (classes, samples) for classification, the outputs for regression.
"""
predict_proba(h::ModelHandle, X::AbstractMatrix) = output(h.task, logits(h, X))

"""
    forward_nfe(h, X) -> Int

Vector-field evaluations of one forward solve on `X` as a single batch.
"""
function forward_nfe(h::ModelHandle, X::AbstractMatrix)
    reset_counts!(h.counter)
    logits(h, X)
    return h.counter.calls
end

"""
    evaluate(h, X, y) -> Dict{String, Vector{Float64}}

`"loss"` on all of `X` and, for classification, `"acc"` (one value each).
"""
function evaluate(h::ModelHandle, X::AbstractMatrix, y::AbstractArray)
    raw = logits(h, X)
    target = targets(h.task, y, size(raw, 2))
    metrics = Dict{String, Vector{Float64}}("loss" => [loss_function(h.task)(raw, target)])
    h.task isa Classification && (metrics["acc"] = [accuracy(h.task, raw, y)])
    return metrics
end

"""
    features(h, X) -> Matrix{Float32}

The end state of the block (state_dims, samples): z(t1), z(T(x)) for adaptive depth, the last
residual block's output for a ResNet; the features the head reads.
"""
function features(h::ModelHandle, X::AbstractMatrix)
    x = h.device(checked_inputs(h, X))
    m, ps, st = h.model, h.ps, h.st
    z0 = initial_state(m, x, ps, st)
    return cpu_device()(first(m.block((z0, x), ps.block, st.block)))
end

"""
    trajectories(h, X, ts) -> Array{Float32, 3}

The states z(t) at the times `ts` (non-decreasing, in `[0, t1]`; for adaptive depth,
fractions in `[0, 1]` of each sample's own end time T(x)), as (state_dims, samples, times);
Python reads it as (times, samples, state_dims).

## Throws

  - `ArgumentError` for times outside the block's span or out of order, and for a ResNet
    (no continuous trajectories).
"""
function trajectories(h::ModelHandle, X::AbstractMatrix, ts::AbstractVector{<:Real})
    t0, t1 = time_span(h.model.block)
    times = Vector{Float32}(ts)
    isempty(times) && throw(ArgumentError("ts is empty; give the times to save at"))
    (issorted(times) && first(times) >= t0 && last(times) <= t1) ||
        throw(ArgumentError(
            "ts must be non-decreasing times in [$t0, $t1], got $(first(times)) .. $(last(times))",
        ))
    x = h.device(checked_inputs(h, X))
    m, ps, st = h.model, h.ps, h.st
    z0 = initial_state(m, x, ps, st)
    states = block_states(m.block, z0, x, ps.block, st.block, times)
    return cpu_device()(cat(states...; dims = 3))
end
