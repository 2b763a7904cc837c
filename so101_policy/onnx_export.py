"""What of a policy is exported to ONNX, and the exported file, cached next to the checkpoint.

- ACT: lerobot's own ACT module (eval mode, no VAE sampling at inference), the whole forward pass;
- SmolVLA: its image encoder (SigLIP and the connector, 69% of a full-size chunk's compute). The
  prefix and the flow steps, whose key-value cache and loop stay in lerobot's code, run on torch.
The file is exported with torch.onnx (the dynamo exporter) once and cached next to the checkpoint (or,
where that folder cannot be written, in ~/.cache/so101/onnx), named by the exported weights' hash and
the input shapes, so a changed checkpoint is exported again and an unchanged one is not.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from lerobot.configs.types import FeatureType
from lerobot.utils.constants import OBS_IMAGES, OBS_STATE

from .checkpoint import CheckpointError, LoadedPolicy
from .resize_with_pad import ResizeWithPadStep

EXPORT_FORMAT = 1  # bump when the exported graph changes, so caches are rebuilt


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


def input_names(shapes: dict[str, tuple[int, ...]]) -> list[str]:
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
            torch.onnx.export(model, example, str(partial), input_names=input_names(part.shapes),
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

