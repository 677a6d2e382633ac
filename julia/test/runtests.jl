# PyANODE's tests, grouped by topic: `julia --project=julia -e 'using Pkg; Pkg.test()'`.
# Set PYANODE_TEST_GROUP to one group name (weights, bases, layers, solve, variants, gradients,
# training, errors, qa) to run only that group, or to "persistent-tasks" for Aqua's
# persistent-tasks check, which "all" leaves out (see check_persistent_tasks). The checks live
# in plain functions so that `fatou lint julia` can see them (fatou skips the insides of macros
# such as @test).

using Aqua: Aqua
using ComponentArrays: ComponentArray
using ExplicitImports: check_no_implicit_imports, check_no_stale_explicit_imports
using PyANODE:
    PyANODE,
    AdaptiveDepthNODE,
    Augment,
    ChebyshevBasis,
    FieldInput,
    FourierBasis,
    GalerkinDense,
    NFECounter,
    NeuralODE,
    OptionError,
    PiecewiseConstantBasis,
    SolverFailure,
    basis_values,
    depth_variant_field,
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
        lr = 1.0e-2, weight_decay = 0.0, seed = 0, device = "cpu", loss = "cross-entropy",
        degree = 2, n_pieces = 2, depth = 2)
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
    # degree 2 (Chebyshev K = 3, Fourier K = 5), n_pieces 2, depth 2.
    dense(i, o) = i * o + o
    field(n_in, state) = dense(n_in, 8) + dense(8, 8) + dense(8, state)
    galerkin(k) = k * (dense(3 + 1, 8) + dense(8, 8) + dense(8, 3))
    expected = Dict(
        "node" => field(2 + 1, 2) + dense(2, 2),
        "anode" => field(3 + 1, 3) + dense(3, 2),
        "il-node" => dense(2, 3) + field(3 + 1, 3) + dense(3, 2),
        "data-controlled" => field(3 + 2 + 1, 3) + dense(3, 2),
        "chebyshev" => galerkin(3) + dense(3, 2),
        "fourier" => galerkin(5) + dense(3, 2),
        "stacked" => galerkin(2) + dense(3, 2),
        "adaptive-depth" => dense(2, 8) + dense(8, 1) + field(3 + 1, 3) + dense(3, 2),
        "resnet" => 2 * (dense(3, 8) + dense(8, 8) + dense(8, 3)) + dense(3, 2),
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

"""A hand-computed GalerkinDense case: torch's weight (K 2, out 2, in 3) = 1:12, bias (2, 2) =
13:16, so W_0 = [1 2 3; 4 5 6], W_1 = [7 8 9; 10 11 12], b_0 = [13, 14], b_1 = [15, 16]."""
function check_hand_computed_galerkin_weights()
    template = (; layer = (; weight = zeros(Float32, 2, 3, 2), bias = zeros(Float32, 2, 2)))
    v = Float32.(1:16)
    ps = flat_to_ps(v, template)
    @test ps.layer.weight[:, :, 1] == Float32[1 2 3; 4 5 6]
    @test ps.layer.weight[:, :, 2] == Float32[7 8 9; 10 11 12]
    @test ps.layer.bias == Float32[13 15; 14 16]
    @test ps_to_flat(ps, template) == v
    # Julia's memory order: each W_k column-major, the bias as it is (the Python helper's
    # torch_to_julia gives the same vector, tests/test_julia_backend.py)
    @test Vector(ComponentArray(ps)) ==
        Float32[1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12, 13, 14, 15, 16]
    @test parameter_count(template) == 16
end

"""In a Chebyshev model (K = 3, field input 4, hidden 8) the field's first layer is W_0, W_1,
W_2 (each 8 x 4 row-major) then b_0, b_1, b_2."""
function check_galerkin_model_layout()
    h = init_model(; model_kwargs(; kind = "chebyshev")...)
    n = length(parameters(h))
    w = Float32.(1:n) ./ n
    set_parameters!(h, w)
    @test parameters(h) == w
    layer = h.ps.block.layer_1
    @test size(layer.weight) == (8, 4, 3)
    @test layer.weight[:, :, 2] == permutedims(reshape(w[33:64], 4, 8))
    @test layer.bias == reshape(w[97:120], 8, 3)
end

# --- bases -----------------------------------------------------------------------------------

"""Chebyshev values are cos(k acos(s)), s = 2 t / t1 - 1, and orthogonal under 1 / sqrt(1 - s^2):
Gauss-Chebyshev quadrature (nodes cos((2i - 1) pi / 2N), weights pi / N, exact below degree
2N) gives the Gram matrix diag(pi, pi / 2, ...)."""
function check_chebyshev_basis()
    t1 = 2.0
    basis = ChebyshevBasis(4, t1)
    @test PyANODE.n_terms(basis) == 5 && PyANODE.n_active(basis) == 5
    @test isempty(PyANODE.jump_times(basis))
    for t in (0.0, 0.3, 1.0, 1.7, 2.0)
        s = 2 * t / t1 - 1
        @test isapprox(
            basis_values(basis, t),
            [cos(k * acos(s)) for k in 0:4];
            atol = 1.0e-6,
        )
    end
    n = 8
    values = [basis_values(basis, (cos((2i - 1) * pi / (2n)) + 1) * t1 / 2) for i in 1:n]
    gram = [sum(v[j] * v[k] for v in values) * pi / n for j in 1:5, k in 1:5]
    expected = [j == k ? (j == 1 ? pi : pi / 2) : 0.0 for j in 1:5, k in 1:5]
    @test isapprox(gram, expected; atol = 1.0e-5)
end

"""Fourier values in the order [1, cos_1, sin_1, cos_2, sin_2, ...], orthogonal on [0, t1] with
squared norms t1 and t1 / 2 (the rectangle rule on N points is exact below harmonic N)."""
function check_fourier_basis()
    t1 = 0.5
    basis = FourierBasis(3, t1)
    @test PyANODE.n_terms(basis) == 7
    phi = basis_values(basis, 0.1)
    @test isapprox(phi[1], 1)
    @test isapprox(phi[4], cos(2 * pi * 2 * 0.1 / t1); atol = 1.0e-6)
    @test isapprox(phi[7], sin(2 * pi * 3 * 0.1 / t1); atol = 1.0e-6)
    n = 16
    values = [basis_values(basis, (i - 1) * t1 / n) for i in 1:n]
    gram = [sum(v[j] * v[k] for v in values) * t1 / n for j in 1:7, k in 1:7]
    expected = [j == k ? (j == 1 ? t1 : t1 / 2) : 0.0 for j in 1:7, k in 1:7]
    @test isapprox(gram, expected; atol = 1.0e-5)
end

"""Piece k holds [k t1 / K, (k + 1) t1 / K); a time on a break point is the next piece (as in
the torch backend), the float just below it the piece before; inside a solve the piece wins."""
function check_piecewise_basis()
    basis = PiecewiseConstantBasis(3, 1.0)
    @test PyANODE.n_terms(basis) == 3 && PyANODE.n_active(basis) == 1
    @test PyANODE.jump_times(basis) ≈ [1 / 3, 2 / 3]
    @test basis_values(basis, 0.0f0) == Float32[1, 0, 0]
    @test basis_values(basis, 0.5f0) == Float32[0, 1, 0]
    @test basis_values(basis, Float32(1 / 3)) == Float32[0, 1, 0]
    @test basis_values(basis, prevfloat(Float32(1 / 3))) == Float32[1, 0, 0]
    @test basis_values(basis, 1.0f0) == Float32[0, 0, 1]
    @test PyANODE.basis_on_piece(basis, 0.9f0, 1) == Float32[1, 0, 0]
    @test PyANODE.basis_on_piece(ChebyshevBasis(2, 1.0), 0.25f0, 3) ==
        basis_values(ChebyshevBasis(2, 1.0), 0.25f0)
end

# --- layers ----------------------------------------------------------------------------------

function check_augment()
    x = Float32[1 2; 3 4]
    y, _ = Augment(2)(x, NamedTuple(), NamedTuple())
    @test y == Float32[1 2; 3 4; 0 0; 0 0]
end

"""W(t) = sum_k phi_k W_k and b(t) = sum_k phi_k b_k, by hand: with phi = [0.5, 2],
W = [14.5 17 19.5; 22 24.5 27], b = [36.5, 39], and h = [1, 0, -1] gives [31.5, 34]."""
function check_galerkin_dense()
    layer = GalerkinDense(3 => 2, ChebyshevBasis(1, 1.0))
    weight = cat(Float32[1 2 3; 4 5 6], Float32[7 8 9; 10 11 12]; dims = 3)
    ps = (; weight, bias = Float32[13 15; 14 16])
    y, _ = layer((reshape(Float32[1, 0, -1], 3, 1), Float32[0.5, 2]), ps, NamedTuple())
    @test vec(y) ≈ Float32[31.5, 34]
    template, st = PyANODE.LuxCore.setup(Xoshiro(0), layer)
    @test size(template.weight) == (2, 3, 2) && size(template.bias) == (2, 2)
    @test all(<=(1 / sqrt(3 * 2)), abs.(template.weight))
    @test st == NamedTuple()
    # a stacked layer has one active piece at a time: its bound is 1 / sqrt(in_dims)
    @test PyANODE.n_active(PiecewiseConstantBasis(4, 1.0)) == 1
end

"""Each residual block is h + mlp(h): the features of a 2-block ResNet by hand."""
function check_resnet_blocks()
    h = init_model(; model_kwargs(; kind = "resnet")...)
    X, _ = separable_data(5)
    z = vcat(X, zeros(Float32, 1, 5)) # augment_dim 1
    for block in (h.ps.block.layer_1, h.ps.block.layer_2)
        a = tanh.(block.layer_1.weight * z .+ block.layer_1.bias)
        b = tanh.(block.layer_2.weight * a .+ block.layer_2.bias)
        z = z .+ (block.layer_3.weight * b .+ block.layer_3.bias)
    end
    @test isapprox(features(h, X), z; rtol = 1.0e-5)
    @test forward_nfe(h, X) == 0
    @test_throws ArgumentError trajectories(h, X, [0.0, 1.0])
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
    sol = PyANODE.node_solve(block, z0, z0, ps, st)
    @test block.counter.calls == sol.stats.nf
    @test block.counter.forward == sol.stats.nf
    @test sol.stats.nf > 6
end

"""A block solve saves at its `saveat` times and at the end, and only at the end without
them (never every step, never through `save_everystep = false`, see `block_solve`)."""
function check_saving()
    block, ps, st = linear_block("dp5")
    z0 = Float32[1 -2; 3 0.5]
    @test PyANODE.node_solve(block, z0, z0, ps, st).t == Float32[1]
    sol = PyANODE.node_solve(block, z0, z0, ps, st; saveat = Float32[0, 0.25, 0.5])
    @test sol.t == Float32[0, 0.25, 0.5, 1]
    @test isapprox(
        reshape(sol.u[3], 2, 2),
        exp.(Float32[-1, 0.5] ./ 2) .* z0;
        rtol = 1.0e-4,
    )
    options = block.solver
    @test options.adaptive && options.controller isa PyANODE.IController
    fixed = linear_block("euler"; dt = 0.25)[1].solver
    @test !fixed.adaptive && fixed.dt == 0.25f0 && fixed.controller === nothing
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

# --- variants: depth-variant, stacked, adaptive depth ----------------------------------------

"""Solve settings on the CPU with tight tolerances and time span (0, t1)."""
function tight_options(; solver = "dp5", dt = nothing, t1 = 1.0)
    return solver_options(;
        solver,
        rtol = 1.0e-6,
        atol = 1.0e-6,
        gradient = "interpolating-adjoint",
        dt,
        max_steps = 100_000,
        t1,
        device = select_device("cpu"),
    )
end

"""Empty states of a three-layer MLP (Chain or DepthVariantField)."""
mlp_states() = (; layer_1 = NamedTuple(), layer_2 = NamedTuple(), layer_3 = NamedTuple())

"""Parameters of a three-layer MLP from its layers' parameters."""
mlp_ps(layers...) = NamedTuple{(:layer_1, :layer_2, :layer_3)}(layers)

"""Dense parameters: `weight` and a zero bias."""
linear(weight::AbstractMatrix) = (; weight, bias = zeros(Float32, size(weight, 1)))

"""GalerkinDense parameters: the coefficient matrices W_1 ... W_K, zero biases."""
function galerkin(weights::AbstractMatrix...)
    bias = zeros(Float32, size(first(weights), 1), length(weights))
    return (; weight = cat(weights...; dims = 3), bias)
end

"""The Dense parameters of piece k of a GalerkinDense: W_k and b_k."""
piece_of(layer, k::Integer) = (; weight = layer.weight[:, :, k], bias = layer.bias[:, k])

"""The stacked NODE equals its pieces solved one after the other: K plain NODE blocks whose
Dense fields hold the coefficients of piece k, each on [(k - 1) / K, k / K]."""
function check_stacked_is_pieces_in_sequence()
    kwargs = model_kwargs(; kind = "stacked", augment_dim = 0, n_pieces = 3)
    h = init_model(; merge(kwargs, (; rtol = 1.0e-6, atol = 1.0e-6))...)
    X, _ = separable_data(5)
    block, ps, st = h.model.block, h.ps.block, h.st.block
    @test PyANODE.piece_bounds(block) == Float32[0, 1 / 3, 2 / 3, 1]
    zT, _ = block((X, X), ps, st)
    @test block.counter.forward > 0
    solver = block.solver
    z = X
    for k in 1:3
        options = PyANODE.with_span(solver, ((k - 1) / 3, k / 3))
        field = mlp_field(3, 8, 2, tanh) # input [z; t], the stacked field's
        plain = NeuralODE(field, FieldInput(false, true), options, NFECounter())
        piece = mlp_ps(
            piece_of(ps.layer_1, k),
            piece_of(ps.layer_2, k),
            piece_of(ps.layer_3, k),
        )
        z, _ = plain((z, X), ComponentArray(piece), mlp_states())
    end
    @test isapprox(zT, z; rtol = 1.0e-5, atol = 1.0e-6)
    # the trajectory through the break points ends at the same state
    traj = trajectories(h, X, [0.0, 1 / 3, 0.5, 2 / 3, 1.0])
    @test size(traj) == (2, 5, 5)
    @test traj[:, :, 1] == X
    @test isapprox(traj[:, :, end], zT; rtol = 1.0e-5, atol = 1.0e-6)
end

"""A piecewise-linear field dz/dt = A_k z with A_k = diag(a_k) on piece k: z(1) =
exp((a_1 + a_2 + a_3) / 3) .* z0 (identity activations, no time input)."""
function check_stacked_closed_form()
    basis = PiecewiseConstantBasis(3, 1.0)
    field = depth_variant_field(2, 2, 2, identity, basis)
    block = NeuralODE(field, FieldInput(false, false), tight_options(), NFECounter())
    eye = Float32[1 0; 0 1]
    rates = (Float32[-1, 0.5], Float32[2, -1], Float32[0.5, 1.5])
    diagonals = [Float32[a[1] 0; 0 a[2]] for a in rates]
    ps = mlp_ps(galerkin(eye, eye, eye), galerkin(eye, eye, eye), galerkin(diagonals...))
    z0 = Float32[1 -2; 3 0.5]
    zT, _ = block((z0, z0), ComponentArray(ps), mlp_states())
    @test isapprox(zT, exp.(sum(rates) ./ 3) .* z0; rtol = 1.0e-5)
end

"""An adaptive-depth block with g(x) = x1 by hand, so T(x) = softplus(x1) + 0.01 per sample;
returns the block, the parameters with the field's `field_ps`, and the states."""
function adaptive_block(field, input, field_ps)
    g = PyANODE.depth_net(2, 1, identity, 1.0, 0.01)
    options = PyANODE.rescaled_options(tight_options(), 2)
    block = AdaptiveDepthNODE(g, field, input, options, NFECounter(), 0.01f0)
    g_ps = (; layer_1 = linear(Float32[1 0]), layer_2 = linear(ones(Float32, 1, 1)))
    g_st = (; layer_1 = NamedTuple(), layer_2 = NamedTuple())
    ps = ComponentArray((; depth_net = g_ps, field = field_ps))
    return block, ps, (; depth_net = g_st, field = mlp_states())
end

"""Each sample's end time T(x) is honoured, with t = s T(x) as the field's time: dz/dt = A z
gives exp(A T) z0 and dz/dt = t gives z0 + T^2 / 2, both per sample."""
function check_adaptive_end_times()
    X = Float32[-2 0 1.5; 0.3 -0.7 2]
    T = log1p.(exp.(X[1:1, :])) .+ 0.01f0 # (1, 3): three different end times
    rates = Float32[-1, 0.5]
    eye = Float32[1 0; 0 1]
    # dz/dt = diag(-1, 0.5) z (no time input)
    field_ps = mlp_ps(linear(eye), linear(eye), linear(Float32[-1 0; 0 0.5]))
    field = mlp_field(2, 2, 2, identity)
    block, ps, st = adaptive_block(field, FieldInput(false, false), field_ps)
    @test isapprox(PyANODE.end_times(block, X, ps, st), T; rtol = 1.0e-6)
    zT, _ = block((X, X), ps, st)
    @test isapprox(zT, exp.(rates .* T) .* X; rtol = 1.0e-4)
    states = PyANODE.block_states(block, X, X, ps, st, Float32[0, 0.5, 1])
    @test states[1] == X
    @test isapprox(states[2], exp.(rates .* (T ./ 2)) .* X; rtol = 1.0e-4)
    @test isapprox(states[3], zT; rtol = 1.0e-5)
    # dz/dt = (t, t): the field reads the per-sample time s T(x)
    field_ps = mlp_ps(linear(Float32[0 0 1; 0 0 1]), linear(eye), linear(eye))
    field = mlp_field(3, 2, 2, identity)
    block, ps, st = adaptive_block(field, FieldInput(false, true), field_ps)
    zT, _ = block((X, X), ps, st)
    @test isapprox(zT, X .+ T .* T ./ 2; rtol = 1.0e-4, atol = 1.0e-5)
end

"""T(x) starts near t1 (the last bias of g is softplus^-1(t1 - t_min)), the tolerances are
rescaled for the T entries of the state, and t1 <= t_min is refused."""
function check_adaptive_settings()
    h = init_model(; model_kwargs(; kind = "adaptive-depth", t1 = 2.0)...)
    @test only(h.ps.block.depth_net.layer_2.bias) ≈ log(expm1(2.0 - 0.01))
    options = h.model.block.solver
    @test options.tspan == (0.0f0, 1.0f0)
    @test options.reltol ≈ 1.0f-3 * sqrt(3 / 4) # state_dims 3
    @test options.abstol ≈ 1.0f-3 * sqrt(3 / 4)
    fixed = tight_options(; solver = "rk4", dt = 0.1)
    rescaled = PyANODE.rescaled_options(fixed, 2) # nothing to rescale
    @test (rescaled.reltol, rescaled.abstol, rescaled.dt) ==
        (fixed.reltol, fixed.abstol, fixed.dt)
    @test !rescaled.adaptive && rescaled.controller === nothing
    too_short = model_kwargs(; kind = "adaptive-depth", t1 = 0.005)
    @test_throws OptionError init_model(; too_short...)
end

# --- gradients -------------------------------------------------------------------------------

"""`i => (loss(v + step e_i) - loss(v - step e_i)) / 2 step` for each coordinate `i`: central
differences of the loss on `(X, y)` around the handle's parameters `v`, which it leaves as it
found them."""
function central_differences(h, X, y, coordinates; step = 1.0e-2)
    v = Float64.(parameters(h))
    loss_at(w) = (set_parameters!(h, Float32.(w)); only(evaluate(h, X, y)["loss"]))
    out = map(collect(coordinates)) do i
        plus, minus = copy(v), copy(v)
        plus[i] += step
        minus[i] -= step
        i => (loss_at(plus) - loss_at(minus)) / (2 * step)
    end
    set_parameters!(h, Float32.(v))
    return out
end

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
    n = length(parameters(h))
    for (i, fd) in central_differences(h, X, y, (1, n ÷ 2, n))
        @test isapprox(reference[i], fd; rtol = 5.0e-2, atol = 1.0e-3)
    end
end

"""The new kinds' gradients agree across methods and with central differences, including a
coordinate of each piece (stacked) and g_omega's last bias (adaptive depth), whose gradient
reaches T(x) through the solve's initial state."""
function check_variant_gradients()
    X, y = separable_data(6)
    # coordinates: the first weight, one in piece 2 of the stacked field's first layer (torch
    # order: W_1 of layer 1 starts after 8 x 4 entries), g's last bias (adaptive-depth: 8 x 2 +
    # 8 + 8 + 1 = 33), the head's last bias
    for (kind, coordinates) in (
            ("stacked", (1, 33)),
            ("adaptive-depth", (1, 33)),
            ("chebyshev", (1, 40)),
        )
        kwargs = model_kwargs(; kind, rtol = 1.0e-6, atol = 1.0e-6)
        results = Dict{String, Vector{Float64}}()
        for gradient in ("backprop", "interpolating-adjoint", "gauss-adjoint")
            h = init_model(; merge(kwargs, (; gradient))...)
            results[gradient] = loss_and_gradient(h, X, y)["gradient"]
        end
        reference = results["interpolating-adjoint"]
        scale = maximum(abs, reference)
        for (_, gradient) in results
            @test maximum(abs, gradient .- reference) <= 1.0e-3 * scale
        end
        h = init_model(; kwargs...)
        at = (coordinates..., length(parameters(h)))
        for (i, fd) in central_differences(h, X, y, at)
            @test isapprox(reference[i], fd; rtol = 5.0e-2, atol = 1.0e-3)
        end
        @test reference[33] != 0 # a real path from the coordinate to the loss
    end
end

"""The largest entry of `a - b` relative to the largest entry of `b`."""
relative_gap(a, b) = maximum(abs, a .- b) / maximum(abs, b)

"""The gradient of `model_kwargs(changes...)` on `(X, y)` as a vector of Float64."""
function gradient_of(X, y; changes...)
    h = init_model(; model_kwargs(; changes...)...)
    return loss_and_gradient(h, X, y)["gradient"]
end

"""`quadrature-adjoint` is the gradient of the forward loss: it agrees with `backprop`
(ReverseDiffAdjoint: the exact gradient of the discrete solve) and with central differences.
Its quadrature reads the forward trajectory between the saved points, so a forward solve that
is not dense (`save_everystep = false`) gives a gradient off by far more than these bounds."""
function check_quadrature_adjoint()
    X, y = separable_data(6)
    for solver in ("dp5", "tsit5")
        tight = (; solver, rtol = 1.0e-6, atol = 1.0e-6)
        quadrature = gradient_of(X, y; tight..., gradient = "quadrature-adjoint")
        backprop = gradient_of(X, y; tight..., gradient = "backprop")
        @test relative_gap(quadrature, backprop) <= 1.0e-3
        h = init_model(; model_kwargs(; tight...)...)
        n = length(parameters(h))
        for (i, fd) in central_differences(h, X, y, (1, n ÷ 2, n))
            @test isapprox(quadrature[i], fd; rtol = 5.0e-2, atol = 1.0e-3)
        end
    end
end

"""The fixed-step solvers with the continuous adjoints: no error (a non-dense forward solve
made `InterpolatingAdjoint` and `GaussAdjoint` re-solve it without `dt`, which `Euler`
refuses), and a gradient within O(dt^order) of the exact discrete gradient (`backprop`): the
continuous adjoint is solved backwards with the same fixed step. For Euler the gap shrinks
with the step."""
function check_fixed_step_adjoints()
    X, y = separable_data(6)
    bounds = Dict("euler" => 5.0e-2, "midpoint" => 1.0e-2, "rk4" => 1.0e-2)
    for (solver, bound) in bounds
        backprop = gradient_of(X, y; solver, dt = 0.01, gradient = "backprop")
        for gradient in ("interpolating-adjoint", "gauss-adjoint", "quadrature-adjoint")
            adjoint = gradient_of(X, y; solver, dt = 0.01, gradient)
            @test all(isfinite, adjoint)
            @test relative_gap(adjoint, backprop) <= bound
        end
    end
    gaps = map((0.02, 0.005)) do dt
        backprop = gradient_of(X, y; solver = "euler", dt, gradient = "backprop")
        adjoint = gradient_of(
            X,
            y;
            solver = "euler",
            dt,
            gradient = "interpolating-adjoint",
        )
        relative_gap(adjoint, backprop)
    end
    @test gaps[2] < gaps[1]
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

"""The exception `f()` throws, or `nothing`."""
function thrown(f)
    try
        f()
    catch err
        return err
    end
    return nothing
end

function check_errors()
    @test_throws OptionError init_model(; model_kwargs(; kind = "spline")...)
    @test_throws OptionError init_model(; model_kwargs(; kind = "fourier", degree = -1)...)
    @test_throws OptionError init_model(; model_kwargs(; kind = "stacked", n_pieces = 0)...)
    @test_throws OptionError init_model(; model_kwargs(; kind = "resnet", depth = 0)...)
    err = thrown(() -> init_model(; model_kwargs(; kind = "stacked", n_pieces = 0)...))
    @test err isa OptionError && occursin("model.n_pieces = \"0\"", sprint(showerror, err))
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
    Aqua.test_all(PyANODE; ambiguities = false, persistent_tasks = false)
    @test check_no_implicit_imports(PyANODE) === nothing
    @test check_no_stale_explicit_imports(PyANODE) === nothing
end

"""Aqua's persistent-tasks check, in its own group (not part of "all"): it `Pkg.develop`s
PyANODE into a fresh temporary environment (a registry resolve, and a precompile of the whole
SciMLSensitivity tree if it resolves other versions) and then allows `tmax` seconds after
loading for the precompile process to exit. Aqua's default of 10 s is tight for a tree this
heavy on a slow machine, so it runs on request, with 60 s."""
check_persistent_tasks() = Aqua.test_persistent_tasks(PyANODE; tmax = 60)

@testset "PyANODE" begin
    run_group("weights") &&
        @testset "weights" begin
            check_hand_computed_weights()
            check_parameter_counts()
            check_model_round_trip()
            check_hand_computed_galerkin_weights()
            check_galerkin_model_layout()
        end
    run_group("bases") &&
        @testset "bases" begin
            check_chebyshev_basis()
            check_fourier_basis()
            check_piecewise_basis()
        end
    run_group("layers") &&
        @testset "layers" begin
            check_augment()
            check_field_input()
            check_galerkin_dense()
            check_resnet_blocks()
        end
    run_group("solve") &&
        @testset "solve" begin
            check_linear_solve()
            check_nfe_counter()
            check_saving()
            check_trajectories()
            check_predictions()
        end
    run_group("variants") &&
        @testset "variants" begin
            check_stacked_is_pieces_in_sequence()
            check_stacked_closed_form()
            check_adaptive_end_times()
            check_adaptive_settings()
        end
    run_group("gradients") &&
        @testset "gradients" begin
            check_gradients()
            check_variant_gradients()
            check_quadrature_adjoint()
            check_fixed_step_adjoints()
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
    GROUP == "persistent-tasks" &&
        @testset "persistent-tasks" begin
            check_persistent_tasks()
        end
end
