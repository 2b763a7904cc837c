"""The torch_bf16 backend: lerobot's own policy, its model's weights in bfloat16, its forward pass under autocast.

For both policy types, ACT and SmolVLA run their own eager code, only in bf16. lerobot's
SmolVLA is written for bf16 weights (its layers cast their inputs to their weights' dtype); autocast
covers ACT and the ops between layers, and runs matrix products in bf16 even where lerobot upcast
their inputs to fp32 (SmolVLA's attention scores and action head).
Casting the weights once, rather than letting autocast cast them at every call, is what makes it
faster than fp32 on a CPU (full SmolVLA with an fp32 VLM on 2 cores: 4.0 s fp32, 3.0 s autocast
alone, 2.6 s cast weights). A SmolVLA fine-tuned from smolvla_base already holds its VLM in bf16, as
lerobot loads it, and gains little from this backend on a CPU. It needs hardware that computes in
bf16: a CUDA GPU from Ampere on, or a CPU with AVX512_BF16 or AMX (elsewhere torch emulates bf16 at a
loss, so the start-up stops instead).
"""

from __future__ import annotations

import torch

from .checkpoint import CheckpointError


def computes_in_bf16(device: torch.device) -> bool:
    if device.type == "cuda":  # Ampere on: older GPUs only emulate bf16, slower than fp32
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


class Bf16Policy:
    """A lerobot policy whose predict_action_chunk computes in bf16; everything else is the policy's own."""

    description = "torch, bf16"

    def __init__(self, policy, device: torch.device, backend: str = "torch_bf16"):
        """`backend`: the backend's name, for the message when this device does not compute in bf16."""
        if not computes_in_bf16(device):
            where = "a CPU with AVX512_BF16 or AMX" if device.type == "cpu" else "a CUDA GPU that supports bf16"
            raise CheckpointError(f"backend {backend} needs {where}; this {device.type} device does not compute in "
                                  "bf16: use the torch backend (fp32)")
        policy.model.to(torch.bfloat16)
        self._policy = policy
        self._device_type = device.type

    def __getattr__(self, name: str):  # config, reset...: lerobot's policy's own
        return getattr(self._policy, name)

    def predict_action_chunk(self, batch: dict[str, torch.Tensor], **kwargs) -> torch.Tensor:
        # No cast cache: the weights are bf16 already, and a CUDA graph (cuda_graph_bf16) cannot record one.
        with torch.autocast(self._device_type, dtype=torch.bfloat16, cache_enabled=False):
            actions = self._policy.predict_action_chunk(batch, **kwargs)
        return actions.float()  # lerobot's postprocessor and real-time chunking work in fp32

    def select_action(self, batch: dict[str, torch.Tensor], **kwargs) -> torch.Tensor:
        """lerobot's one-action-at-a-time interface (its action queue), in bf16 too."""
        with torch.autocast(self._device_type, dtype=torch.bfloat16):
            action = self._policy.select_action(batch, **kwargs)
        return action.float()
