"""`so101 export`: build a checkpoint's model for an inference backend ahead of time.

policy_node builds it at start-up when it is missing; exporting first keeps that start-up short and
shows here, not on the robot, that the checkpoint exports.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass

from .options import option


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: str = option(MISSING, "pretrained_model folder or hub repo id")
    backend: str = option("openvino_bf16", "the backend to build for (policy_node's backend parameter): "
                                           "onnxruntime, openvino and openvino_bf16 share one ONNX file")
    device: str = option("cpu", "auto, cuda, mps or cpu: where the exported model will run")


def export(config: ExportConfig) -> str:
    """The built model's path, or what the backend runs directly."""
    from so101_policy.checkpoint import load_policy
    from so101_policy.inference_backends import describe_backend, with_backend

    return describe_backend(with_backend(load_policy(config.checkpoint, config.device), config.backend))
