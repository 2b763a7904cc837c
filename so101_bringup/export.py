"""`so101 export`: build a checkpoint's model for an inference backend ahead of time.

policy_node builds it at start-up when it is missing; exporting first keeps that start-up short and
shows here, not on the robot, that the checkpoint exports.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass

from so101_policy.backend_names import UNEXPORTED_BACKENDS, check_backend_name

from .options import option


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: str = option(MISSING, "pretrained_model folder or hub repo id")
    backend: str = option("openvino_bf16", "the backend to build for (policy_node's backend parameter): "
                                           "onnxruntime, openvino and openvino_bf16 share one ONNX file: "
                                           "ACT's model, SmolVLA's image encoder")
    device: str = option("cpu", "auto, cuda, mps or cpu: where the exported model will run")

    def __post_init__(self):
        """Checked before torch and lerobot load (seconds), so a mistyped backend is told at once."""
        if check_backend_name(self.backend) in UNEXPORTED_BACKENDS:
            raise ValueError(f"the {self.backend} backend runs the checkpoint as it is: there is nothing to export")


def export(config: ExportConfig) -> tuple[str, str]:
    """(the exported model's path, the runtime that loaded it)."""
    from so101_policy.checkpoint import load_policy
    from so101_policy.inference_backends import describe_backend, exported_file, with_backend

    loaded = with_backend(load_policy(config.checkpoint, config.device), config.backend)
    return str(exported_file(loaded)), describe_backend(loaded)
