"""The torch_bf16 backend: lerobot's own policy, its model's weights in bfloat16, its forward pass under autocast.

The one backend for both policy types: ACT and SmolVLA run their own eager code, only in bf16. lerobot's
SmolVLA is written for it (its layers cast their inputs to their weights' dtype, and attention
scores and the action head are computed in fp32); autocast covers ACT and the ops between layers.
Casting the weights once, rather than letting autocast cast them at every call, is what makes it
faster than fp32 on a CPU (full SmolVLA on 2 cores: 4.0 s fp32, 3.0 s autocast alone, 2.6 s
cast weights). It needs hardware that computes in bf16: a CUDA GPU that supports it, or a CPU with
AVX512_BF16 or AMX (elsewhere torch emulates bf16 at a loss, so the start-up stops instead).
"""

from __future__ import annotations

import torch

from .checkpoint import CheckpointError


def computes_in_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


class Bf16Policy:
    """A lerobot policy whose predict_action_chunk computes in bf16; everything else is the policy's own."""

    description = "torch, bf16"

    def __init__(self, policy, device: torch.device):
        if not computes_in_bf16(device):
            where = "a CPU with AVX512_BF16 or AMX" if device.type == "cpu" else "a CUDA GPU that supports bf16"
            raise CheckpointError(f"backend torch_bf16 needs {where}; this {device.type} device does not compute in "
                                  "bf16: use the torch backend (fp32)")
        policy.model.to(torch.bfloat16)
        self._policy = policy
        self._device_type = device.type

    def __getattr__(self, name: str):  # config, reset, select_action...: lerobot's policy's own
        return getattr(self._policy, name)

    def predict_action_chunk(self, batch: dict[str, torch.Tensor], **kwargs) -> torch.Tensor:
        with torch.autocast(self._device_type, dtype=torch.bfloat16):
            actions = self._policy.predict_action_chunk(batch, **kwargs)
        return actions.float()  # lerobot's postprocessor and real-time chunking work in fp32
