# The model handle Python holds, and training with Adam: one call per epoch.

"""
    ModelHandle

What Python holds between calls (an opaque juliacall value): the model, its parameters,
states and optimiser state on the device, the task, the NFE counter, and the CPU parameter
template that fixes the flat parameter order.
"""
mutable struct ModelHandle{M <: ODEClassifier, T <: AbstractTask, D, R}
    model::M
    task::T
    device::D
    template::NamedTuple
    rule::R
    counter::NFECounter
    in_dims::Int
    rng::Xoshiro
    ps::Any
    st::Any
    opt_state::Any
end

const HISTORY_KEYS = ("loss", "nfe_forward", "nfe_backward", "seconds")

"""
    init_model(; kind, in_dims, out_dims, hidden, augment_dim, activation, time_dependent,
        degree, n_pieces, depth, solver, rtol, atol, gradient, dt, max_steps, t1, lr,
        weight_decay, seed, device, loss) -> ModelHandle

Build the model of [`build_model`](@ref) with the solve settings of
[`solver_options`](@ref), initialise its parameters from `seed`, and set up Adam with
learning rate `lr` and L2 weight decay `weight_decay` added to the gradient (as
`torch.optim.Adam(weight_decay=...)` does). Every keyword is required: the defaults live in
pyanode's specs, not here.

## Keyword Arguments

  - `device`: `"cpu"` or `"cuda"` (see [`select_device`](@ref)).
  - `loss`: `"cross-entropy"` (classification, `out_dims` classes) or `"mse"` (regression).
  - the others: the fields of `ModelSpec`, `SolverSpec` and `TrainSpec` of the same names.
"""
function init_model(;
    kind::AbstractString,
    in_dims::Integer,
    out_dims::Integer,
    hidden::Integer,
    augment_dim::Integer,
    activation::AbstractString,
    time_dependent::Bool,
    degree::Integer,
    n_pieces::Integer,
    depth::Integer,
    solver::AbstractString,
    rtol::Real,
    atol::Real,
    gradient::AbstractString,
    dt::Union{Nothing, Real},
    max_steps::Integer,
    t1::Real,
    lr::Real,
    weight_decay::Real,
    seed::Integer,
    device::AbstractString,
    loss::AbstractString,
)
    lr > 0 || throw(OptionError("train.lr", string(lr), String[], "use a value > 0"))
    weight_decay >= 0 ||
        throw(OptionError(
            "train.weight_decay",
            string(weight_decay),
            String[],
            "use a value >= 0",
        ))
    dev = select_device(device)
    task = task_from_loss(loss, out_dims)
    options = solver_options(;
        solver,
        rtol,
        atol,
        gradient,
        dt,
        max_steps,
        t1,
        device = dev,
    )
    counter = NFECounter()
    model = build_model(
        kind;
        in_dims,
        out_dims,
        hidden,
        augment_dim,
        activation,
        time_dependent,
        degree,
        n_pieces,
        depth,
        solver = options,
        counter,
    )
    template, st = LuxCore.setup(Xoshiro(seed), model)
    rule = weight_decay > 0 ? OptimiserChain(WeightDecay(weight_decay), Adam(lr)) : Adam(lr)
    ps = dev(ComponentArray(template))
    return ModelHandle(
        model,
        task,
        dev,
        template,
        rule,
        counter,
        Int(in_dims),
        Xoshiro(seed),
        ps,
        dev(st),
        Optimisers.setup(rule, ps),
    )
end

"""
    checked_inputs(h, X) -> Matrix{Float32}

Copy the (features, samples) input `X` (a `PyArray` of `x.T` from Python) into a `Matrix`.

## Throws

  - `DimensionMismatch` for a wrong number of features, `ArgumentError` for NaN or Inf.
"""
function checked_inputs(h::ModelHandle, X::AbstractMatrix)
    size(X, 1) == h.in_dims ||
        throw(DimensionMismatch(
            "inputs have $(size(X, 1)) " *
                "features (rows) but the model takes $(h.in_dims); pass x.T of an (N, D) array",
        ))
    all(isfinite, X) || throw(ArgumentError("inputs contain NaN or Inf"))
    return Matrix{Float32}(X)
end

"""
    batch_order(h, order, n) -> Vector{Int}

The 1-based visiting order of the `n` samples: `order` (0-based, e.g. the torch backend's
`batch_order(seed, epoch, n)`, so that both backends see the same batches), or a permutation
from the handle's seeded generator when `order === nothing`.
"""
batch_order(h::ModelHandle, ::Nothing, n::Integer) = randperm(h.rng, n)
function batch_order(::ModelHandle, order::AbstractVector{<:Integer}, n::Integer)
    perm = Vector{Int}(order) .+ 1
    sort(perm) == 1:n || throw(ArgumentError("order must be a permutation of 0:$(n - 1)"))
    return perm
end

"""
    loss_and_grads(h, x, target) -> (loss, gradient)

The mean loss on one batch (already on the device) and its gradient with respect to `h.ps`,
by Zygote through the solve (whose `sensealg` decides how the solve is differentiated).
"""
function loss_and_grads(h::ModelHandle, x, target)
    lossfn = loss_function(h.task)
    model, st = h.model, h.st
    result = Zygote.withgradient(p -> lossfn(first(model(x, p, st)), target), h.ps)
    return Float64(result.val), only(result.grad)
end

"""
    train_epoch!(h, X, y; batch_size, order = nothing) -> Dict{String, Vector{Float64}}

One epoch of Adam over mini-batches of `batch_size` samples, in `order` (see
[`batch_order`](@ref)). `X` is (features, samples); `y` holds 0-based labels or the
(targets, samples) regression targets.

## Returns

Per step: `"loss"` (batch mean), `"nfe_forward"`, `"nfe_backward"` (see
[`NFECounter`](@ref)) and `"seconds"` (wall time of the step). The epoch stops early after a
non-finite loss, which is the last entry.
"""
function train_epoch!(
    h::ModelHandle,
    X::AbstractMatrix,
    y::AbstractArray;
    batch_size::Integer,
    order::Union{Nothing, AbstractVector{<:Integer}} = nothing,
)
    batch_size > 0 ||
        throw(OptionError(
            "train.batch_size",
            string(batch_size),
            String[],
            "use a value > 0",
        ))
    x_all = checked_inputs(h, X)
    n = size(x_all, 2)
    y_all = targets(h.task, y, n)
    history = Dict{String, Vector{Float64}}(key => Float64[] for key in HISTORY_KEYS)
    for idx in Iterators.partition(batch_order(h, order, n), batch_size)
        started = time_ns()
        x, target = h.device(x_all[:, idx]), h.device(y_all[:, idx])
        reset_counts!(h.counter)
        loss, grads = loss_and_grads(h, x, target)
        push!(history["loss"], loss)
        push!(history["nfe_forward"], h.counter.forward)
        push!(history["nfe_backward"], backward_calls(h.counter))
        if isfinite(loss)
            h.opt_state, h.ps = Optimisers.update!(h.opt_state, h.ps, grads)
        end
        push!(history["seconds"], (time_ns() - started) / 1.0e9)
        isfinite(loss) || break
    end
    return history
end

"""
    loss_and_gradient(h, X, y) -> Dict{String, Vector{Float64}}

The loss on all of `X` as one batch, its gradient as one flat vector in the shared order
(see [`ps_to_flat`](@ref)), and the step's NFE; the parameters are not changed.

## Returns

`"loss"` (one value), `"gradient"`, `"nfe_forward"` and `"nfe_backward"` (one value each).
"""
function loss_and_gradient(h::ModelHandle, X::AbstractMatrix, y::AbstractArray)
    x_all = checked_inputs(h, X)
    target = h.device(targets(h.task, y, size(x_all, 2)))
    reset_counts!(h.counter)
    loss, grads = loss_and_grads(h, h.device(x_all), target)
    return Dict{String, Vector{Float64}}(
        "loss" => [loss],
        "gradient" => Vector{Float64}(ps_to_flat(grads, h.template)),
        "nfe_forward" => [h.counter.forward],
        "nfe_backward" => [backward_calls(h.counter)],
    )
end

"""
    parameters(h) -> Vector{Float32}

The current parameters as one flat vector in the shared order.
"""
parameters(h::ModelHandle) = ps_to_flat(h.ps, h.template)

"""
    set_parameters!(h, v) -> h

Load the flat vector `v` (shared order) into the model and reset Adam's state.

## Throws

  - `DimensionMismatch` for a vector of the wrong length.
"""
function set_parameters!(h::ModelHandle, v::AbstractVector{<:Real})
    h.ps = h.device(ComponentArray(flat_to_ps(v, h.template)))
    h.opt_state = Optimisers.setup(h.rule, h.ps)
    return h
end
