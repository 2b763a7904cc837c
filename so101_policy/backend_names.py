"""The inference backends by name: torch-free, so graphs and launch files check a name without loading a model."""

from __future__ import annotations

from enum import Enum


class InferenceBackend(str, Enum):
    TORCH = "torch"  # lerobot's eager predict_action_chunk
    ONNXRUNTIME = "onnxruntime"  # the model exported to ONNX, run by ONNX Runtime (CPU, or CUDA where present)
    OPENVINO = "openvino"  # the same file compiled by OpenVINO for the CPU, fp32
    OPENVINO_BF16 = "openvino_bf16"  # the same, computing in bf16 (CPUs with AVX512_BF16 or AMX)


BACKEND_NAMES = tuple(backend.value for backend in InferenceBackend)
