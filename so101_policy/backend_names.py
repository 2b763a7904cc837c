"""The inference backends by name: torch-free, so graphs and launch files check a name without loading a model."""

from __future__ import annotations

from enum import Enum


class InferenceBackend(str, Enum):
    TORCH = "torch"  # lerobot's eager predict_action_chunk
    TORCH_BF16 = "torch_bf16"  # the same, weights in bf16 under autocast (ACT and SmolVLA; CPU with bf16, or CUDA)
    ONNXRUNTIME = "onnxruntime"  # the model exported to ONNX, run by ONNX Runtime (CPU, or CUDA where present)
    OPENVINO = "openvino"  # the same file compiled by OpenVINO for the CPU, fp32
    OPENVINO_BF16 = "openvino_bf16"  # the same, computing in bf16 (CPUs with AVX512_BF16 or AMX)
    TORCH_COMPILE = "torch_compile"  # lerobot's policy compiled by torch.compile (CUDA graphs on a GPU)
    TORCH_COMPILE_BF16 = "torch_compile_bf16"  # the same in bf16
    CUDA_GRAPH = "cuda_graph"  # lerobot's ACT, its forward pass recorded once as a CUDA graph and replayed
    CUDA_GRAPH_BF16 = "cuda_graph_bf16"  # the same in bf16 (GPUs from Ampere on)


BACKEND_NAMES = tuple(backend.value for backend in InferenceBackend)
# They run an ONNX file `so101 export` builds; the others run the checkpoint as it is.
EXPORTED_BACKENDS = (InferenceBackend.ONNXRUNTIME.value, InferenceBackend.OPENVINO.value,
                     InferenceBackend.OPENVINO_BF16.value)
UNEXPORTED_BACKENDS = tuple(name for name in BACKEND_NAMES if name not in EXPORTED_BACKENDS)
# They run on a CUDA GPU only, and ACT only.
CUDA_BACKENDS = (InferenceBackend.CUDA_GRAPH.value, InferenceBackend.CUDA_GRAPH_BF16.value)
COMPILED_BACKENDS = (InferenceBackend.TORCH_COMPILE.value, InferenceBackend.TORCH_COMPILE_BF16.value)
BACKEND_HELP = ("where the model's forward pass runs: torch (lerobot's eager), torch_bf16 (the same in bf16, on a GPU "
                "or a CPU that computes in bf16), onnxruntime, openvino or openvino_bf16 (ACT's model, SmolVLA's image "
                "encoder, exported once and cached next to the checkpoint; openvino_bf16 is the fastest on a CPU that "
                "computes in bf16), torch_compile or torch_compile_bf16 (compiled at start-up; CUDA graphs on a GPU), "
                "cuda_graph or cuda_graph_bf16 (ACT recorded once as a CUDA graph, on a GPU)")


def check_backend_for(backend: str, policy_type: str, real_time_chunking: bool) -> None:
    """A ValueError saying why, where `backend` cannot run this policy type or real-time chunking."""
    if backend in CUDA_BACKENDS and policy_type != "act":
        raise ValueError(f"backend {backend} runs ACT; SmolVLA's forward pass waits for the GPU and copies to it, "
                         "which a CUDA graph cannot record: use torch_bf16 or torch_compile_bf16 for SmolVLA")
    if backend in COMPILED_BACKENDS and real_time_chunking:
        raise ValueError(f"backend {backend} cannot run real-time chunking (mode rtc, SmolVLA's default): its inputs "
                         "change every chunk, and each change compiles again. Use mode async, or the torch_bf16 "
                         "backend")


def check_backend_name(name: str) -> str:
    """`name` if it names a backend, else a ValueError saying which do: for configs, before torch loads."""
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {list(BACKEND_NAMES)}, got {name!r}")
    return name


# How far a backend's chunk may be from eager fp32 torch's on the same observations, in radians: the
# suite checks it on this CPU, benchmarks/bench_backends.py --check on any machine (gpu.sh). fp32
# backends differ by float rounding only, far below an encoder tick (1.5e-3 rad). bf16 keeps 8 bits of
# mantissa (a relative error of 2^-9 per rounding): full ACT's and full SmolVLA's chunks stay within
# 0.007 rad (bench_backends.py); allowed is 0.02 rad, about one degree, a fifth of the driver's
# per-tick step limit (max_relative_target, 0.1 rad).
FP32_TOLERANCE_RAD = 1e-3
BF16_TOLERANCE_RAD = 0.02
EXACTNESS_TOLERANCE_RAD = {
    InferenceBackend.TORCH: 0.0,
    InferenceBackend.TORCH_BF16: BF16_TOLERANCE_RAD,
    InferenceBackend.ONNXRUNTIME: FP32_TOLERANCE_RAD,
    InferenceBackend.OPENVINO: FP32_TOLERANCE_RAD,
    InferenceBackend.OPENVINO_BF16: BF16_TOLERANCE_RAD,
    InferenceBackend.TORCH_COMPILE: FP32_TOLERANCE_RAD,
    InferenceBackend.TORCH_COMPILE_BF16: BF16_TOLERANCE_RAD,
    InferenceBackend.CUDA_GRAPH: FP32_TOLERANCE_RAD,
    InferenceBackend.CUDA_GRAPH_BF16: BF16_TOLERANCE_RAD,
}
