"""The runtimes that run an exported ONNX file, and the stand-ins that put them in a lerobot policy.

ONNX Runtime runs the file in fp32 (CUDA where present); OpenVINO compiles it for the CPU in fp32, or
in bf16 where the CPU computes in bf16 (AVX512_BF16 or AMX). `ExportedAct` replaces an ACT policy's
`predict_action_chunk`; `ExportedImageEncoder` replaces SmolVLA's `embed_image`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError
from .onnx_export import input_names


class OnnxRuntimeSession:
    """The exported model in ONNX Runtime: fp32, CUDA where the policy's device is and ORT has it, else CPU."""

    def __init__(self, path: Path, device: torch.device):
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.description = f"onnxruntime, {self.session.get_providers()[0]}"

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feeds)[0]


@functools.cache
def openvino_core():
    """The process's one OpenVINO Core, kept until exit.

    OpenVINO's CPU plugin (2026.4) gives the main thread an alternate signal stack of its own when a
    Core loads it and puts back the one it found when that Core goes. Two Cores whose lives overlap
    and end in the order they began leave the second's saved stack, already freed, in place: the next
    signal a Python handler takes on the main thread (a DataLoader worker's SIGCHLD, a Ctrl-C) then
    kills the process with a segfault that no Python stack reports. One Core loads the plugin once.
    """
    import openvino

    return openvino.Core()


def read_onnx(path: Path):
    """The ONNX file as an OpenVINO model, read by OpenVINO's ONNX reader alone.

    `Core.compile_model(path)` tries every reader in turn on a file it cannot parse, and the
    TensorFlow one writes its own parse errors to stderr before the real reason comes back.
    """
    from openvino.frontend import FrontEndManager

    onnx_reader = FrontEndManager().load_by_framework("onnx")
    if not onnx_reader.supported(str(path)):  # an empty file would read as a model without inputs or outputs
        raise RuntimeError(f"{path} holds no ONNX model")
    return onnx_reader.convert(onnx_reader.load(str(path)))


class OpenVinoModel:
    """The exported model compiled by OpenVINO for the CPU, computing in `precision` (f32 or bf16)."""

    def __init__(self, path: Path, precision: str):
        if precision == "bf16":
            self.require_bf16()
        self.compiled = openvino_core().compile_model(
            read_onnx(path), "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.description = f"openvino, CPU {precision}"

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.request.infer(feeds)[self.compiled.output(0)]

    @staticmethod
    def require_bf16() -> None:
        if "BF16" not in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise CheckpointError("backend openvino_bf16 needs a CPU that computes in bf16 (AVX512_BF16 or AMX); "
                                  "this one does not: use the openvino backend (fp32)")


class ExportedAct:
    """An ACT policy whose predict_action_chunk runs the exported model; everything else is lerobot's policy."""

    def __init__(self, policy, runtime, path: Path, shapes: dict[str, tuple[int, ...]], device: torch.device):
        self.runtime = runtime
        self.path = path
        self._policy = policy
        self._inputs = dict(zip(shapes, input_names(shapes)))
        self._shapes = shapes
        self._device = device

    def __getattr__(self, name: str):  # config, reset, ...: lerobot's policy's own
        return getattr(self._policy, name)

    def predict_action_chunk(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feeds = {input_name: _feed(key, batch[key], self._shapes[key]) for key, input_name in self._inputs.items()}
        return torch.from_numpy(np.asarray(self.runtime(feeds), dtype=np.float32)).to(self._device)


class ExportedImageEncoder:
    """Stands in for lerobot's SmolVLA `embed_image`: the camera's embeddings from the exported encoder."""

    def __init__(self, runtime, path: Path, shape: tuple[int, ...], dtype: torch.dtype):
        self.runtime = runtime
        self.path = path
        self._shape = shape
        self._dtype = dtype  # what the rest of the model computes in

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        embeddings = self.runtime({"image": _feed("a camera's image", image, self._shape)})
        return torch.from_numpy(np.asarray(embeddings, dtype=np.float32)).to(image.device, self._dtype)


def _feed(name: str, value: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    array = value.detach().to("cpu", torch.float32).numpy()
    if array.shape != shape:
        raise CheckpointError(f"{name} reaches the model as {array.shape}; the ONNX model was exported for {shape}")
    return np.ascontiguousarray(array)
