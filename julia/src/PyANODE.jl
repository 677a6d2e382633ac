"""
    PyANODE

Neural ODE classifiers for pyanode's Julia backend: the NODE of Chen et al. (2018), the
augmented ANODE of Dupont et al. (2019), the IL-NODE and data-controlled NODE of Massaroli et
al. (2020), the depth-variant (Chebyshev, Fourier, stacked) and adaptive-depth NODEs of the
survey "Overcoming Limitations of Neural ODEs" and the ResNet baseline, with Lux vector
fields, OrdinaryDiffEq solvers (Tsit5, DP5, ...), SciMLSensitivity gradients and CPU or CUDA
devices. Python calls it through juliacall, one call per epoch; the
same weights load into the torch backend (see [`ps_to_flat`](@ref)).
"""
module PyANODE

using ChainRulesCore: @ignore_derivatives
using ComponentArrays: ComponentArray
using Lux: Chain, CrossEntropyLoss, Dense, MSELoss, NoOpLayer, SkipConnection
using LuxCore: LuxCore, AbstractLuxContainerLayer, AbstractLuxLayer, AbstractLuxWrapperLayer
using MLDataDevices: CPUDevice, cpu_device, gpu_device
using NNlib: elu, relu, sigmoid, softmax, softplus
using Optimisers: Optimisers, Adam, OptimiserChain, WeightDecay
using OrdinaryDiffEqCore: IController
using OrdinaryDiffEqLowOrderRK: BS3, DP5, Euler, Midpoint, RK4
using OrdinaryDiffEqTsit5: Tsit5
using PrecompileTools: @compile_workload, @setup_workload
using Random: AbstractRNG, Xoshiro, rand, randperm
using SciMLBase: ODEFunction, ODEProblem, solve, successful_retcode
using SciMLSensitivity:
    BacksolveAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
    ReverseDiffAdjoint,
    TrackerAdjoint,
    ZygoteVJP
using Zygote: Zygote

include("errors.jl")
include("nfe.jl")
include("fields.jl")
include("bases.jl")
include("galerkin.jl")
include("solvers.jl")
include("node.jl")
include("adaptive.jl")
include("resnet.jl")
include("models.jl")
include("weights.jl")
include("devices.jl")
include("tasks.jl")
include("train.jl")
include("inference.jl")
include("precompile.jl")

export Augment, FieldInput, NeuralODE, ODEClassifier, build_model, mlp_field
export AbstractBasis, ChebyshevBasis, FourierBasis, PiecewiseConstantBasis, basis_values
export GalerkinDense, DepthVariantField, depth_variant_field
export AdaptiveDepthNODE, ResidualBlocks, residual_blocks
export NFECounter, SolverOptions, sensealg_from_name, solver_options, select_device
export DeviceError, OptionError, SolverFailure
export ModelHandle, init_model, train_epoch!, loss_and_gradient, evaluate
export logits, predict_proba, features, trajectories, forward_nfe
export parameters, set_parameters!, parameter_count, ps_to_flat, flat_to_ps

end
