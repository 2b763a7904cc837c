"""An ACT backbone trained from scratch learns its batch norm, and lerobot's own ACT loads the result."""

import torch
from lerobot.policies.act.modeling_act import ACTPolicy
from torchvision.ops.misc import FrozenBatchNorm2d

from tiny_policies import tiny_act_checkpoint
from training.backbone_batchnorm import LearnedBatchNorm2d, learn_backbone_batchnorm, needs_learned_batchnorm


def _batch(seed: int, size: int = 4) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"observation.state": torch.randn(size, 6, generator=generator),
            "observation.images.wrist": torch.rand(size, 3, 32, 32, generator=generator) * 3 + 1,
            "action": torch.randn(size, 20, 6, generator=generator),
            "action_is_pad": torch.zeros(size, 20, dtype=torch.bool)}


def test_frozen_identity_batch_norm_is_trained_and_loads_back_into_lerobots_frozen_layers(tmp_path):
    source = tiny_act_checkpoint(tmp_path / "tiny", cameras=("wrist",), image_shape=(3, 32, 32))
    policy = ACTPolicy.from_pretrained(source)
    assert needs_learned_batchnorm(policy.config)
    frozen = sum(isinstance(m, FrozenBatchNorm2d) for m in policy.modules())
    assert frozen > 0 and learn_backbone_batchnorm(policy) == frozen
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in policy.modules())
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
    policy.train()
    for step in range(3):
        loss, _ = policy.forward(_batch(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    layer = next(m for m in policy.modules() if isinstance(m, LearnedBatchNorm2d))
    assert not torch.allclose(layer.running_mean, torch.zeros_like(layer.running_mean))  # statistics learned
    assert not torch.allclose(layer.weight, torch.ones_like(layer.weight))  # and the affine parameters
    policy.save_pretrained(tmp_path / "trained")
    # lerobot's own loading (strict, FrozenBatchNorm2d) gives the same actions as the trained policy
    # in eval mode, i.e. its learned statistics.
    loaded = ACTPolicy.from_pretrained(tmp_path / "trained")
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in loaded.modules()) == frozen
    policy.eval()
    loaded.eval()
    batch = _batch(7)
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_action_chunk(batch), policy.predict_action_chunk(batch))
