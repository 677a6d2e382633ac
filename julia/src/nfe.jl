# Counting vector-field evaluations (NFE) of the ODE block, forward and backward.

"""
    NFECounter()

Counts calls of an ODE block's vector field. `calls` counts every evaluation (forward solves
and the vector-Jacobian products of an adjoint); `forward` the part made inside forward
solves. The backward NFE of a training step is `calls - forward`: the RHS calls of the adjoint
(one per VJP with `ZygoteVJP`), and zero for a taped backprop (`ReverseDiffAdjoint`), which
replays its tape without calling the field again.

The counter is a mutable object shared by the layer and its handle; it is not thread-safe.
"""
mutable struct NFECounter
    calls::Int
    forward::Int
end

NFECounter() = NFECounter(0, 0)

"""
    reset_counts!(counter) -> counter

Set both counts to zero (at the start of a training step or a prediction).
"""
function reset_counts!(counter::NFECounter)
    counter.calls = 0
    counter.forward = 0
    return counter
end

"""
    count_call!(counter)

Count one vector-field evaluation; called inside the RHS under `@ignore_derivatives`.
"""
function count_call!(counter::NFECounter)
    counter.calls += 1
    return nothing
end

"""
    record_forward!(counter, start)

Add the evaluations since `start` (the value of `calls` when the forward solve began) to the
forward count.
"""
function record_forward!(counter::NFECounter, start::Integer)
    counter.forward += counter.calls - start
    return nothing
end

"""
    backward_calls(counter) -> Int

Evaluations made outside forward solves: the backward NFE of a training step.
"""
backward_calls(counter::NFECounter) = counter.calls - counter.forward
