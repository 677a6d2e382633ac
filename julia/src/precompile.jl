# A PrecompileTools workload: the default CPU path (build, one epoch, predict), so that the
# first call from Python does not wait for compilation. Switch it off with the preference
# `precompile_workload = false` on PyANODE.

"""
    precompile_workload()

Train a tiny ANODE for one epoch and predict with it, on the CPU.
"""
function precompile_workload()
    X = rand(Xoshiro(0), Float32, 2, 8)
    y = [0, 1, 0, 1, 0, 1, 0, 1]
    h = init_model(;
        kind = "anode",
        in_dims = 2,
        out_dims = 2,
        hidden = 4,
        augment_dim = 1,
        activation = "relu",
        time_dependent = true,
        degree = 1,
        n_pieces = 2,
        depth = 1,
        solver = "dp5",
        rtol = 1.0e-3,
        atol = 1.0e-3,
        gradient = "backprop",
        dt = nothing,
        max_steps = 1000,
        t1 = 1.0,
        lr = 1.0e-3,
        weight_decay = 0.0,
        seed = 0,
        device = "cpu",
        loss = "cross-entropy",
    )
    train_epoch!(h, X, y; batch_size = 4)
    predict_proba(h, X)
    set_parameters!(h, parameters(h))
    return nothing
end

@setup_workload begin
    @compile_workload begin
        try
            precompile_workload()
        catch err
            @warn "PyANODE's precompile workload failed; the first calls will compile instead" exception = err
        end
    end
end
