"""Where the model's forward pass runs: lerobot's eager PyTorch (fp32 or bf16), ONNX Runtime, or OpenVINO
(fp32 or bf16), torch.compile, or a CUDA graph of lerobot's ACT, chosen by name at start-up.

lerobot's preprocessor and postprocessor run as they are on every backend, so what reaches the model
and what leaves it are the same; only `predict_action_chunk` changes. torch_bf16 (torch_bf16.py) is
lerobot's eager policy in bf16, for ACT and SmolVLA; torch_compile and torch_compile_bf16
(torch_compile.py) compile it; cuda_graph and cuda_graph_bf16 (cuda_graph.py) replay lerobot's ACT
recorded once on a GPU. The other backends run an exported ONNX file
(onnx_export.py: ACT's whole model, SmolVLA's image encoder) on a runtime (onnx_runtimes.py); with
openvino_bf16 the rest of a SmolVLA runs in bf16 too. openvino_bf16 is the backend that meets one
camera frame period for full ACT on a 2-core CPU. `so101 export` builds the file ahead of time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from .backend_names import COMPILED_BACKENDS, CUDA_BACKENDS, InferenceBackend, check_backend_for, check_backend_name
from .checkpoint import CheckpointError, LoadedPolicy
from .cuda_graph import CudaGraphPolicy
from .onnx_export import exported_part, onnx_model
from .onnx_runtimes import ExportedAct, ExportedImageEncoder, OnnxRuntimeSession, OpenVinoModel
from .torch_bf16 import Bf16Policy
from .torch_compile import CompiledPolicy


def inference_backend(name: str) -> InferenceBackend:
    try:
        return InferenceBackend(check_backend_name(name))
    except ValueError as error:
        raise CheckpointError(str(error)) from None


def with_backend(loaded: LoadedPolicy, backend: InferenceBackend | str, cache_dir: Path | None = None) -> LoadedPolicy:
    """The loaded policy with its forward pass on `backend` (built, or taken from the cache, now)."""
    backend = inference_backend(backend) if isinstance(backend, str) else backend
    try:
        check_backend_for(backend.value, loaded.type, loaded.real_time_chunking)
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if backend is InferenceBackend.TORCH:
        return loaded
    if backend is InferenceBackend.TORCH_BF16:
        return replace(loaded, policy=Bf16Policy(loaded.policy, loaded.device))
    if backend.value in COMPILED_BACKENDS:
        return replace(loaded, policy=CompiledPolicy(loaded.policy, loaded.device, backend))
    if backend.value in CUDA_BACKENDS:
        return replace(loaded, policy=CudaGraphPolicy(loaded.policy, loaded.device, backend))
    part = exported_part(loaded)
    if backend is InferenceBackend.OPENVINO_BF16:
        OpenVinoModel.require_bf16()  # before the export: a CPU without bf16 is told at once
    path = onnx_model(loaded, cache_dir)
    runtime = _load_runtime(backend, path, loaded.device)
    if loaded.type == "act":
        return replace(loaded, policy=ExportedAct(loaded.policy, runtime, path, part.shapes, loaded.device))
    policy = Bf16Policy(loaded.policy, loaded.device) if backend is InferenceBackend.OPENVINO_BF16 else loaded.policy
    vlm_with_expert = loaded.policy.model.vlm_with_expert
    # lerobot's SmolVLA embeds each camera through this method: from here on, through the runtime.
    vlm_with_expert.embed_image = ExportedImageEncoder(
        runtime, path, part.shapes["image"], next(vlm_with_expert.get_vlm_model().connector.parameters()).dtype)
    return replace(loaded, policy=policy)


def _load_runtime(backend: InferenceBackend, path: Path, device: torch.device):
    try:
        if backend is InferenceBackend.ONNXRUNTIME:
            return OnnxRuntimeSession(path, device)
        return OpenVinoModel(path, "bf16" if backend is InferenceBackend.OPENVINO_BF16 else "f32")
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - a runtime that cannot read the cached file
        # The runtimes nest their reason under lines of source locations; the reason is the last line.
        reason = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        raise CheckpointError(f"{backend.value} cannot load the exported model {path} ({reason[-1]}); delete it "
                              "to export again.") from error


def processor_threads(loaded: LoadedPolicy) -> int | None:
    """torch's thread count for a process running `loaded`: None keeps torch's own.

    With the model on an exported runtime on the CPU, that runtime's thread pool computes the model
    and torch runs only lerobot's small processor steps; torch's threads, which keep spinning after
    each step, would take the cores from the runtime's (measured on 2 cores, full ACT on
    openvino_bf16: 35.9 ms p50 from observation to radians with 2 torch threads, 32.0 with 1).
    """
    return 1 if isinstance(loaded.policy, ExportedAct) and loaded.device.type == "cpu" else None


def describe_backend(loaded: LoadedPolicy) -> str:
    """For the start-up log: which runtime the forward pass is on."""
    torch_part = (loaded.policy.description if isinstance(loaded.policy, (Bf16Policy, CompiledPolicy, CudaGraphPolicy))
                  else "torch, eager")
    if isinstance(loaded.policy, ExportedAct):
        return f"{loaded.policy.runtime.description}, {loaded.policy.path}"
    if isinstance(encoder := exported_image_encoder(loaded), ExportedImageEncoder):
        return f"{encoder.runtime.description} image encoder, {encoder.path}; the rest on {torch_part}"
    return torch_part


def exported_file(loaded: LoadedPolicy) -> Path | None:
    """The exported model file the policy runs, if any."""
    if isinstance(loaded.policy, ExportedAct):
        return loaded.policy.path
    encoder = exported_image_encoder(loaded)
    return encoder.path if isinstance(encoder, ExportedImageEncoder) else None


def exported_image_encoder(loaded: LoadedPolicy):
    """What a SmolVLA embeds each camera with: an ExportedImageEncoder on an exported backend, lerobot's
    own `embed_image` method otherwise; None for ACT."""
    return loaded.policy.model.vlm_with_expert.embed_image if loaded.type == "smolvla" else None


