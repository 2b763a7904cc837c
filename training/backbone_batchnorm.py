"""Batch norm that learns, for an ACT backbone trained from scratch.

lerobot's ACT builds its ResNet with torchvision's FrozenBatchNorm2d: right for ImageNet weights,
whose batch-norm statistics were learned in pre-training, but with no pre-trained weights (offline,
the sim) every one of those layers is frozen at the identity and the ResNet trains with no
normalisation at all, which makes it learn slowly. For such runs `so101 train` trains the backbone
with ordinary BatchNorm2d layers and saves them under FrozenBatchNorm2d's names (weight, bias,
running mean and variance), so the checkpoint loads into lerobot's ACT unchanged and inference uses
the learned statistics exactly as it uses ImageNet's.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d


class LearnedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose saved state is what FrozenBatchNorm2d loads (no num_batches_tracked)."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination.pop(prefix + "num_batches_tracked", None)

    @classmethod
    def from_frozen(cls, frozen: FrozenBatchNorm2d) -> LearnedBatchNorm2d:
        layer = cls(frozen.weight.numel(), eps=frozen.eps)
        with torch.no_grad():
            layer.weight.copy_(frozen.weight)
            layer.bias.copy_(frozen.bias)
            layer.running_mean.copy_(frozen.running_mean)
            layer.running_var.copy_(frozen.running_var)
        return layer.to(frozen.weight.device)


def learn_backbone_batchnorm(policy: nn.Module) -> int:
    """Replace every FrozenBatchNorm2d in `policy` by a LearnedBatchNorm2d; returns how many."""
    replaced = 0
    for parent in list(policy.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FrozenBatchNorm2d):
                setattr(parent, name, LearnedBatchNorm2d.from_frozen(child))
                replaced += 1
    return replaced


def needs_learned_batchnorm(policy_config) -> bool:
    """ACT without pre-trained backbone weights: its frozen batch norm would stay the identity."""
    return policy_config.type == "act" and not getattr(policy_config, "pretrained_backbone_weights", None)
