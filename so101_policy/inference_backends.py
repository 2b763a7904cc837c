"""Where the model's forward pass runs: lerobot's eager PyTorch (fp32 or bf16), ONNX Runtime, or OpenVINO
(fp32 or bf16).

lerobot's preprocessor and postprocessor run as they are on every backend, so what reaches the model
and what leaves it are the same; only `predict_action_chunk` changes. The exported backends share one
file, exported with torch.onnx once and cached next to the checkpoint (or, where that folder cannot
be written, in ~/.cache/so101/onnx), named by the exported weights' hash and the input shapes, so a
changed checkpoint is exported again and an unchanged one is not:
- ACT: lerobot's own ACT module (eval mode, no VAE sampling at inference), the whole forward pass;
- SmolVLA: its image encoder (SigLIP and the connector, 69% of a full-size chunk's compute). The
  prefix and the flow steps, whose key-value cache and loop stay in lerobot's code, run on torch:
  in fp32, or in bf16 (torch_bf16.py) with openvino_bf16.
ONNX Runtime runs the file in fp32 (CUDA where present); OpenVINO compiles it for the CPU in fp32, or
in bf16 where the CPU computes in bf16 (AVX512_BF16 or AMX), the backend that meets one camera frame
period for full ACT on a 2-core CPU. `so101 export` builds the file ahead of time. torch_bf16 needs
no file: it is lerobot's eager policy in bf16, for ACT and SmolVLA.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import logging
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from lerobot.configs.types import FeatureType
from lerobot.utils.constants import OBS_IMAGES, OBS_STATE

from .backend_names import BACKEND_NAMES, InferenceBackend
from .checkpoint import CheckpointError, LoadedPolicy
from .resize_with_pad import ResizeWithPadStep
from .torch_bf16 import Bf16Policy

EXPORT_FORMAT = 1  # bump when the exported graph changes, so caches are rebuilt
WEIGHTS_FILE = "model.safetensors"


def inference_backend(name: str) -> InferenceBackend:
    try:
        return InferenceBackend(name)
    except ValueError:
        raise CheckpointError(f"backend must be one of {list(BACKEND_NAMES)}, got {name!r}") from None


def with_backend(loaded: LoadedPolicy, backend: InferenceBackend | str, cache_dir: Path | None = None) -> LoadedPolicy:
    """The loaded policy with its forward pass on `backend` (built, or taken from the cache, now)."""
    backend = inference_backend(backend) if isinstance(backend, str) else backend
    if backend is InferenceBackend.TORCH:
        return loaded
    if backend is InferenceBackend.TORCH_BF16:
        return replace(loaded, policy=Bf16Policy(loaded.policy, loaded.device))
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
        detail = " ".join(str(error).split())[-300:]  # runtimes nest their reasons over many lines
        raise CheckpointError(f"{backend.value} cannot load the exported model {path} ({detail}); delete it to "
                              "export again.") from error


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
    torch_part = loaded.policy.description if isinstance(loaded.policy, Bf16Policy) else "torch, eager"
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
    return loaded.policy.model.vlm_with_expert.embed_image if loaded.type == "smolvla" else None


def model_input_shapes(loaded: LoadedPolicy) -> dict[str, tuple[int, ...]]:
    """What the model is handed, after the preprocessor: the state (1, 6) and each camera (1, 3, H, W)."""
    config = loaded.config
    resize = next((step for step in loaded.preprocessor.steps if isinstance(step, ResizeWithPadStep)), None)
    shapes = {OBS_STATE: (1, *config.robot_state_feature.shape)}
    for key, feature in config.input_features.items():
        if feature.type is FeatureType.VISUAL:
            channels, height, width = feature.shape
            if resize is not None and resize._applies_to(key):
                height, width = resize.height, resize.width
            shapes[key] = (1, channels, height, width)
    return shapes


class ExportedPart(NamedTuple):
    """What of a policy is exported: a module of tensors, its inputs' shapes, the file's name."""

    name: str
    module: torch.nn.Module
    shapes: dict[str, tuple[int, ...]]
    output: str


def exported_part(loaded: LoadedPolicy) -> ExportedPart:
    if loaded.type == "act":
        return ExportedPart("act", _ActForward(loaded.policy.model), model_input_shapes(loaded), "actions")
    if loaded.type == "smolvla":
        size = loaded.config.resize_imgs_with_padding
        if size is None:
            raise CheckpointError("this SmolVLA checkpoint embeds its cameras at their own sizes "
                                  "(resize_imgs_with_padding is None), which an exported image encoder cannot "
                                  "take: use torch or torch_bf16")
        channels = next(f.shape[0] for f in loaded.config.input_features.values() if f.type is FeatureType.VISUAL)
        return ExportedPart("smolvla_image_encoder", _SmolVLAImageEncoder(loaded.policy.model.vlm_with_expert),
                            {"image": (1, channels, *size)}, "embeddings")
    raise CheckpointError(f"backends other than torch and torch_bf16 run ACT and SmolVLA; this is {loaded.type}")


class _SmolVLAImageEncoder(torch.nn.Module):
    """lerobot's SmolVLA image embedding (SigLIP, then the connector) as a function of the image alone."""

    def __init__(self, vlm_with_expert: torch.nn.Module):
        super().__init__()
        self.vision = vlm_with_expert.get_vlm_model().vision_model
        self.connector = vlm_with_expert.get_vlm_model().connector

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.connector(self.vision(pixel_values=image.to(self.vision.dtype)).last_hidden_state)


class _ActForward(torch.nn.Module):
    """lerobot's ACT module as a function of tensors (what torch.onnx exports): state, images -> actions."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, state: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        return self.model({OBS_STATE: state, OBS_IMAGES: list(images)})[0]


def _input_names(shapes: dict[str, tuple[int, ...]]) -> list[str]:
    return [key.replace(".", "_") for key in shapes]


def onnx_model(loaded: LoadedPolicy, cache_dir: Path | None = None) -> Path:
    """The checkpoint's exported part (exported_part) as an ONNX file: from the cache, or exported now."""
    part = exported_part(loaded)
    path = _cache_dir(loaded, cache_dir) / f"{part.name}_{_cache_key(part)}.onnx"
    if path.is_file():
        return path
    # A float32 copy on the CPU: the policy keeps its own modules where and as they are (a SmolVLA
    # fine-tuned from smolvla_base holds its VLM in bf16, as lerobot loads it).
    model = copy.deepcopy(part.module).float().eval().cpu()
    example = tuple(torch.zeros(shape) for shape in part.shapes.values())
    partial = path.with_suffix(f".{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(model, example, str(partial), input_names=_input_names(part.shapes),
                              output_names=[part.output], dynamo=True, external_data=False)
        partial.replace(path)  # whole or not at all: a reader never sees half a file
    except OSError as error:
        raise CheckpointError(f"Could not write the exported model to {path.parent} ({error}); give the "
                              "checkpoint's folder or ~/.cache/so101 write access.") from error
    except Exception as error:  # noqa: BLE001 - any exporter failure means: this checkpoint cannot run here
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise CheckpointError(f"Could not export {loaded.source} to ONNX ({error!r}); use the torch "
                              "backend.") from error
    return path


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter reports its progress on stdout and its optimizer's notes as warnings: a node's log
    gets our one line instead."""
    optimizer_log = logging.getLogger("onnxscript")
    level = optimizer_log.level
    optimizer_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optimizer_log.setLevel(level)


def _cache_dir(loaded: LoadedPolicy, cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return cache_dir
    local = Path(loaded.source).expanduser()
    if local.is_dir() and os.access(local, os.W_OK):
        return local / "onnx"
    return Path.home() / ".cache" / "so101" / "onnx"


def _cache_key(part: ExportedPart) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(part.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype
    digest.update(repr((sorted(part.shapes.items()), EXPORT_FORMAT, torch.__version__)).encode())
    return digest.hexdigest()[:16]


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


class OpenVinoModel:
    """The exported model compiled by OpenVINO for the CPU, computing in `precision` (f32 or bf16)."""

    def __init__(self, path: Path, precision: str):
        if precision == "bf16":
            self.require_bf16()
        self.compiled = openvino_core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                              "PERFORMANCE_HINT": "LATENCY"})
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
        self._inputs = dict(zip(shapes, _input_names(shapes)))
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
