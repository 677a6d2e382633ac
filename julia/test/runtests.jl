# PyANODE's tests, grouped by topic: `julia --project=julia -e 'using Pkg; Pkg.test()'`.
# Set PYANODE_TEST_GROUP to one group name (weights, layers, solve, gradients, training,
# errors, qa) to run only that group. The checks live in plain functions so that
# `fatou lint julia` can see them (fatou skips the insides of macros such as @test).

using Aqua: Aqua
using ComponentArrays: ComponentArray
using ExplicitImports: check_no_implicit_imports, check_no_stale_explicit_imports
using PyANODE:
    PyANODE,
    Augment,
    FieldInput,
    NFECounter,
    NeuralODE,
    OptionError,
    SolverFailure,
    evaluate,
    features,
    flat_to_ps,
    forward_nfe,
    init_model,
    loss_and_gradient,
    mlp_field,
    parameter_count,
    parameters,
    predict_proba,
    ps_to_flat,
    select_device,
    set_parameters!,
    solver_options,
    train_epoch!,
    trajectories
using Random: Xoshiro
using Test: @test, @test_throws, @testset

const GROUP = get(ENV, "PYANODE_TEST_GROUP", "all")

run_group(name) = GROUP == "all" || GROUP == name

"""Keyword arguments of `init_model` for a small problem; override any with `changes`."""
function model_kwargs(; changes...)
    defaults = (; kind = "anode", in_dims = 2, out_dims = 2, hidden = 8, augment_dim = 1,
        activation = "tanh", time_dependent = true, solver = "dp5", rtol = 1.0e-3, atol = 1.0e-3,
        gradient = "interpolating-adjoint", dt = nothing, max_steps = 10_000, t1 = 1.0,
        lr = 1.0e-2, weight_decay = 0.0, seed = 0, device = "cpu", loss = "cross-entropy")
    return merge(defaults, (; changes...))
end

"""Points of two classes split by the line x1 = 0 (labels 0-based)."""
function separable_data(n; seed = 1)
    X = 2 .* rand(Xoshiro(seed), Float32, 2, n) .- 1
    y = [x1 > 0 ? 1 : 0 for x1 in X[1, :]]
    return X, y
end

# --- weights ---------------------------------------------------------------------------------

"""A hand-computed case: W = [1 2 3; 4 5 6] (out 2, in 3), b = [7, 8]."""
function check_hand_computed_weights()
    template = (; layer = (; weight = zeros(Float32, 2, 3), bias = zeros(Float32, 2)))
    v = Float32[1, 2, 3, 4, 5, 6, 7, 8] # torch order: W row-major, then b
    ps = flat_to_ps(v, template)
    @test ps.layer.weight == Float32[1 2 3; 4 5 6]
    @test ps.layer.bias == Float32[7, 8]
    @test ps_to_flat(ps, template) == v
    # Julia's own memory order (what ComponentArray stores) is W column-major, then b:
    @test Vector(ComponentArray(ps)) == Float32[1, 4, 2, 5, 3, 6, 7, 8]
    @test parameter_count(template) == 8
    @test_throws DimensionMismatch flat_to_ps(Float32[1, 2, 3], template)
end

"""Parameter counts of every kind against the formula of the torch backend."""
function check_parameter_counts()
    # in 2, augment 1 (state 3), hidden 8, 2 classes; time appended as the last input row.
    dense(i, o) = i * o + o
    field(n_in, state) = dense(n_in, 8) + dense(8, 8) + dense(8, state)
    expected = Dict(
        "node" => field(2 + 1, 2) + dense(2, 2),
        "anode" => field(3 + 1, 3) + dense(3, 2),
        "il-node" => dense(2, 3) + field(3 + 1, 3) + dense(3, 2),
        "data-controlled" => field(3 + 2 + 1, 3) + dense(3, 2),
    )
    for (kind, n) in expected
        augment_dim = kind == "node" ? 0 : 1
        h = init_model(; model_kwargs(; kind, augment_dim)...)
        @test length(parameters(h)) == n
        @test parameter_count(h.template) == n
    end
end

"""The flat vector round-trips through a model, and the order is input map, field, head."""
function check_model_round_trip()
    h = init_model(; model_kwargs(; kind = "il-node")...)
    v = parameters(h)
    w = Float32.(1:length(v)) ./ length(v)
    set_parameters!(h, w)
    @test parameters(h) == w
    # first segment: the input map Dense(2 => 3), weight row-major
    @test h.ps.input_map.weight == permutedims(reshape(w[1:6], 2, 3))
    @test vec(h.ps.head.bias) == w[(end - 1):end]
end

# --- layers ----------------------------------------------------------------------------------

function check_augment()
    x = Float32[1 2; 3 4]
    y, _ = Augment(2)(x, NamedTuple(), NamedTuple())
    @test y == Float32[1 2; 3 4; 0 0; 0 0]
end

"""The field's input is [z; x; t], the torch backend's order."""
function check_field_input()
    u = Float32[1 2]
    x = Float32[5 6]
    ones_row = ones(Float32, 1, 2)
    @test PyANODE.assemble(FieldInput(true, true), u, x, ones_row, 0.5f0) ==
        Float32[1 2; 5 6; 0.5 0.5]
    @test PyANODE.assemble(FieldInput(false, true), u, x, ones_row, 0.5f0) ==
        Float32[1 2; 0.5 0.5]
    @test PyANODE.assemble(FieldInput(true, false), u, x, ones_row, 0.5f0) ==
        Float32[1 2; 5 6]
    @test PyANODE.assemble(FieldInput(false, false), u, x, ones_row, 0.5f0) == u
    @test PyANODE.field_in_dims(FieldInput(true, true), 3, 2) == 6
end

# --- solve -----------------------------------------------------------------------------------

"""A linear field f(z) = A z with A = diag(-1, 1/2): z(1) = exp.(diag(A)) .* z0 exactly."""
function linear_block(solver; rtol = 1.0e-6, atol = 1.0e-6, dt = nothing)
    options = solver_options(;
        solver,
        rtol,
        atol,
        gradient = "interpolating-adjoint",
        dt,
        max_steps = 100_000,
        t1 = 1.0,
        device = select_device("cpu"),
    )
    field = mlp_field(2, 2, 2, identity)
    block = NeuralODE(field, FieldInput(false, false), options, NFECounter())
    # weights: identity, identity, A; zero biases
    ps = (; layer_1 = (; weight = Float32[1 0; 0 1], bias = zeros(Float32, 2)),
        layer_2 = (; weight = Float32[1 0; 0 1], bias = zeros(Float32, 2)),
        layer_3 = (; weight = Float32[-1 0; 0 0.5], bias = zeros(Float32, 2)))
    st = (; layer_1 = NamedTuple(), layer_2 = NamedTuple(), layer_3 = NamedTuple())
    return block, ComponentArray(ps), st
end

function check_linear_solve()
    z0 = Float32[1 -2; 3 0.5]
    exact = exp.(Float32[-1, 0.5]) .* z0
    for solver in ("dp5", "tsit5", "bosh3")
        block, ps, st = linear_block(solver)
        zT, _ = block((z0, z0), ps, st)
        @test isapprox(zT, exact; rtol = 1.0e-4)
    end
    block, ps, st = linear_block("rk4"; dt = 0.01)
    zT, _ = block((z0, z0), ps, st)
    @test isapprox(zT, exact; rtol = 1.0e-5)
    # Euler with dt = 1/100 is first order: error about dt/2 * |A^2 z| relative
    block, ps, st = linear_block("euler"; dt = 0.01)
    zT, _ = block((z0, z0), ps, st)
    @test !isapprox(zT, exact; rtol = 1.0e-4)
    @test isapprox(zT, exact; rtol = 2.0e-2)
end

"""The NFE counter agrees with OrdinaryDiffEq's own count of f calls."""
function check_nfe_counter()
    block, ps, st = linear_block("dp5"; rtol = 1.0e-4, atol = 1.0e-4)
    z0 = Float32[1 -2; 3 0.5]
    sol = PyANODE.node_solve(block, z0, z0, ps, st; save_everystep = false)
    @test block.counter.calls == sol.stats.nf
    @test block.counter.forward == sol.stats.nf
    @test sol.stats.nf > 6
end

function check_trajectories()
    h = init_model(; model_kwargs()...)
    X, _ = separable_data(5)
    ts = [0.0, 0.25, 0.5, 1.0]
    traj = trajectories(h, X, ts)
    @test size(traj) == (3, 5, 4)
    @test traj[:, :, 1] ≈ vcat(X, zeros(Float32, 1, 5)) # z(0) = augmented input
    @test isapprox(traj[:, :, end], features(h, X); rtol = 1.0e-3, atol = 1.0e-4)
    @test_throws ArgumentError trajectories(h, X, [0.0, 2.0])
end

function check_predictions()
    h = init_model(; model_kwargs()...)
    X, y = separable_data(7)
    p = predict_proba(h, X)
    @test size(p) == (2, 7)
    @test all(>=(0), p)
    @test vec(sum(p; dims = 1)) ≈ ones(Float32, 7)
    @test forward_nfe(h, X) >= 7
    metrics = evaluate(h, X, y)
    @test 0 <= only(metrics["acc"]) <= 1
    @test only(metrics["loss"]) > 0
end

# --- gradients -------------------------------------------------------------------------------

"""Every gradient method agrees with the others and with central differences."""
function check_gradients()
    X, y = separable_data(6)
    results = Dict{String, Dict{String, Vector{Float64}}}()
    for gradient in (
            "backprop",
            "adjoint",
            "interpolating-adjoint",
            "quadrature-adjoint",
            "gauss-adjoint",
        )
        h = init_model(; model_kwargs(; gradient, rtol = 1.0e-6, atol = 1.0e-6)...)
        results[gradient] = loss_and_gradient(h, X, y)
        @test only(results[gradient]["nfe_forward"]) > 0
    end
    reference = results["interpolating-adjoint"]["gradient"]
    scale = maximum(abs, reference)
    for (gradient, result) in results
        @test maximum(abs, result["gradient"] .- reference) <= 1.0e-3 * scale
    end
    @test only(results["backprop"]["nfe_backward"]) == 0 # the tape is replayed, f is not
    @test only(results["adjoint"]["nfe_backward"]) > 0
    # central differences on a few coordinates
    h = init_model(; model_kwargs(; rtol = 1.0e-6, atol = 1.0e-6)...)
    v = Float64.(parameters(h))
    for i in (1, length(v) ÷ 2, length(v))
        step = 1.0e-2
        loss_at(w) = (set_parameters!(h, Float32.(w)); only(evaluate(h, X, y)["loss"]))
        plus, minus = copy(v), copy(v)
        plus[i] += step
        minus[i] -= step
        fd = (loss_at(plus) - loss_at(minus)) / (2 * step)
        @test isapprox(reference[i], fd; rtol = 5.0e-2, atol = 1.0e-3)
    end
end

# --- training --------------------------------------------------------------------------------

function check_training()
    X, y = separable_data(128)
    h = init_model(; model_kwargs(; kind = "node", augment_dim = 0, lr = 3.0e-2)...)
    first_epoch = train_epoch!(h, X, y; batch_size = 32)
    @test length(first_epoch["loss"]) == 4
    @test all(>(0), first_epoch["nfe_forward"])
    @test all(>(0), first_epoch["nfe_backward"])
    last_epoch = first_epoch
    for _ in 1:14
        last_epoch = train_epoch!(h, X, y; batch_size = 32)
    end
    @test sum(last_epoch["loss"]) < sum(first_epoch["loss"])
    @test only(evaluate(h, X, y)["acc"]) >= 0.9
    # a given 0-based order is used as is: one batch per sample visits every sample once
    order = collect(127:-1:0)
    epoch = train_epoch!(h, X, y; batch_size = 128, order)
    @test length(epoch["loss"]) == 1
    @test_throws ArgumentError train_epoch!(
        h,
        X,
        y;
        batch_size = 128,
        order = zeros(Int, 128),
    )
end

# --- errors ----------------------------------------------------------------------------------

function check_errors()
    @test_throws OptionError init_model(; model_kwargs(; kind = "chebyshev")...)
    @test_throws OptionError init_model(; model_kwargs(; kind = "spline")...)
    @test_throws OptionError init_model(; model_kwargs(; solver = "rk45")...)
    @test_throws OptionError init_model(; model_kwargs(; solver = "rk4")...) # no dt
    @test_throws OptionError init_model(; model_kwargs(; gradient = "magic")...)
    @test_throws OptionError init_model(; model_kwargs(; activation = "gelu")...)
    @test_throws OptionError init_model(; model_kwargs(;
        kind = "anode",
        augment_dim = 0,
    )...)
    message = sprint(showerror, OptionError("model.kind", "spline", ["anode", "node"], ""))
    @test occursin("model.kind = \"spline\"", message)
    @test occursin("accepted: anode, node", message)
    h = init_model(; model_kwargs(; max_steps = 3, rtol = 1.0e-8, atol = 1.0e-8)...)
    X, _ = separable_data(4)
    err = try
        predict_proba(h, X)
        nothing
    catch caught
        caught
    end
    @test err isa SolverFailure
    @test err isa SolverFailure && err.reason == "max_steps"
    @test err isa SolverFailure && occursin("max_steps", sprint(showerror, err))
    h = init_model(; model_kwargs()...)
    @test_throws DimensionMismatch predict_proba(h, ones(Float32, 3, 4))
    @test_throws ArgumentError train_epoch!(h, X, [0, 1, 2, 5]; batch_size = 2)
    @test_throws DimensionMismatch set_parameters!(h, zeros(Float32, 3))
end

# --- quality ---------------------------------------------------------------------------------

function check_quality()
    Aqua.test_all(PyANODE; ambiguities = false)
    @test check_no_implicit_imports(PyANODE) === nothing
    @test check_no_stale_explicit_imports(PyANODE) === nothing
end

@testset "PyANODE" begin
    run_group("weights") &&
        @testset "weights" begin
            check_hand_computed_weights()
            check_parameter_counts()
            check_model_round_trip()
        end
    run_group("layers") &&
        @testset "layers" begin
            check_augment()
            check_field_input()
        end
    run_group("solve") &&
        @testset "solve" begin
            check_linear_solve()
            check_nfe_counter()
            check_trajectories()
            check_predictions()
        end
    run_group("gradients") &&
        @testset "gradients" begin
            check_gradients()
        end
    run_group("training") &&
        @testset "training" begin
            check_training()
        end
    run_group("errors") &&
        @testset "errors" begin
            check_errors()
        end
    run_group("qa") &&
        @testset "qa" begin
            check_quality()
        end
end
