# CPU and CUDA devices through MLDataDevices.

const DEVICES = ("cpu", "cuda")

"""
    select_device(name) -> device

`cpu_device()` for `"cpu"`; `gpu_device()` for `"cuda"`, which needs CUDA.jl and cuDNN.jl
loaded in the session (`python -m pyanode.julia install --gpu` adds them and the Python side
imports them before asking for `"cuda"`).

## Throws

  - `DeviceError` when `"cuda"` finds no functional GPU; `OptionError` for another name.
"""
function select_device(name::AbstractString)
    name == "cpu" && return cpu_device()
    if name == "cuda"
        device = gpu_device()
        device isa CPUDevice &&
            throw(DeviceError(
                name,
                "no functional CUDA GPU; install the GPU packages with `python -m pyanode.julia " *
                    "install --gpu` and check `CUDA.functional()` in Julia",
            ))
        return device
    end
    throw(OptionError("train.device", name, collect(DEVICES)))
end
