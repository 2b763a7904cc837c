"""The auxiliary object-state target: what it adds to ACT's loss, what it trains, and what it leaves out of the
checkpoint. Its run through `so101 train` (and resume) is in test_training.py."""

import numpy as np
import pytest
import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from safetensors import safe_open

from training.auxiliary_state import (HEAD_NAME, AuxiliaryStateError, attach_auxiliary_state,
                                      check_auxiliary_state, load_head, save_head)

ENV = "observation.environment_state"
# About the sim's: metres, a quaternion whose roll and pitch barely move (0.001: below the floor of 0.01).
ENV_STATS = {"mean": np.array([0.21, 0.0, 0.0125, 1.0, 0.0, 0.0, 0.0, 0.21, 0.1, 0.0], np.float32),
             "std": np.array([0.02, 0.02, 0.01, 0.05, 0.001, 0.001, 0.2, 0.02, 0.02, 0.001], np.float32)}


def tiny_act(image_shape=(3, 64, 64)) -> ACTPolicy:
    torch.manual_seed(0)
    config = ACTConfig(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (6,)),
                        "observation.images.wrist": PolicyFeature(FeatureType.VISUAL, image_shape),
                        "observation.images.overhead": PolicyFeature(FeatureType.VISUAL, image_shape)},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        chunk_size=5, n_action_steps=5, dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1,
        n_decoder_layers=1, use_vae=False, pretrained_backbone_weights=None, device="cpu",
        dropout=0.0)  # two forward passes of the same weights agree
    return ACTPolicy(config)


def batch_of(size=4, image_shape=(3, 64, 64), seed=1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"observation.state": torch.randn(size, 6, generator=generator),
            "observation.images.wrist": torch.rand(size, *image_shape, generator=generator),
            "observation.images.overhead": torch.rand(size, *image_shape, generator=generator),
            "action": torch.randn(size, 5, 6, generator=generator),
            "action_is_pad": torch.zeros(size, 5, dtype=torch.bool),
            ENV: torch.as_tensor(ENV_STATS["mean"]) + 0.05 * torch.randn(size, 10, generator=generator)}


def test_the_loss_is_acts_plus_the_weighted_error_of_the_normalised_state():
    policy = tiny_act()
    plain = tiny_act()  # the same weights (same seed), never attached
    target = attach_auxiliary_state(policy, ENV_STATS, weight=0.5)
    torch.nn.init.zeros_(target.head.weight)
    torch.nn.init.zeros_(target.head.bias)  # predicts 0: the error is the normalised target's own square
    batch = batch_of()
    policy.train(), plain.train()
    loss, output = policy.forward(batch)
    acts_loss, _ = plain.forward(batch)
    # By hand: divide by each component's spread, never by less than 0.01.
    normalised = (batch[ENV].numpy() - ENV_STATS["mean"]) / np.maximum(ENV_STATS["std"], 0.01)
    expected_error = float(np.mean(normalised ** 2))
    assert output["aux_state_mse"] == pytest.approx(expected_error, rel=1e-5)
    assert output["l1_loss"] == pytest.approx(float(acts_loss.detach()), rel=1e-5)  # ACT's own, logged apart
    assert float(loss.detach()) == pytest.approx(float(acts_loss.detach()) + 0.5 * expected_error, rel=1e-5)
    # Not in evaluation: lerobot's validation loss stays ACT's own.
    policy.eval(), plain.eval()
    with torch.no_grad():
        assert float(policy.forward(batch)[0]) == pytest.approx(float(plain.forward(batch)[0]), rel=1e-6)


def test_the_target_reaches_the_backbone_through_lerobots_own_parameter_groups():
    policy = tiny_act()
    target = attach_auxiliary_state(policy, ENV_STATS, weight=1.0)
    head_parameters = {id(p) for p in target.head.parameters()}
    optimised = {id(p) for group in policy.get_optim_params() for p in group["params"]}
    assert head_parameters <= optimised
    policy.train()
    batch = batch_of()
    loss, _ = policy.forward(batch)
    loss.backward()
    with_target = {name: p.grad.clone() for name, p in policy.named_parameters() if name.startswith("model.backbone")}
    policy.zero_grad()
    type(policy).forward(policy, batch)[0].backward()  # ACT's loss alone
    changed = [name for name, grad in with_target.items()
               if not torch.allclose(grad, policy.get_parameter(name).grad)]
    assert changed, "the object-state error does not reach the backbone"


@pytest.mark.parametrize("image_shape, cells", [((3, 64, 64), 2 * 2 * 2), ((3, 96, 96), 2 * 3 * 3),
                                                ((3, 48, 64), 2 * 2 * 2)])
def test_the_head_reads_every_image_token_of_both_cameras(image_shape, cells):
    policy = tiny_act(image_shape)
    target = attach_auxiliary_state(policy, ENV_STATS, weight=1.0)
    assert target.image_tokens == cells and target.head.in_features == cells * 32
    policy.train()
    policy.forward(batch_of(image_shape=image_shape))  # shapes agree


def test_the_checkpoint_is_a_plain_lerobot_act_and_the_head_lives_on(tmp_path):
    policy = tiny_act()
    target = attach_auxiliary_state(policy, ENV_STATS, weight=1.0)
    policy.save_pretrained(tmp_path / "pretrained_model")
    with safe_open(str(tmp_path / "pretrained_model" / "model.safetensors"), "pt") as saved:
        keys = set(saved.keys())
    assert keys == set(tiny_act().state_dict()) and not any(HEAD_NAME in key for key in keys)
    loaded = ACTPolicy.from_pretrained(tmp_path / "pretrained_model")  # lerobot's own loading
    assert ENV not in loaded.config.input_features
    assert HEAD_NAME in dict(policy.named_children())  # still training with it after the save
    # lerobot hands a gathered state dict in under FSDP: the head's tensors are left out of that one too.
    policy.save_pretrained(tmp_path / "gathered", state_dict=policy.state_dict())
    with safe_open(str(tmp_path / "gathered" / "model.safetensors"), "pt") as saved:
        assert set(saved.keys()) == keys
    # The head itself goes beside the optimizer state, and a resumed run gets it back.
    with torch.no_grad():
        target.head.weight.add_(1.0)  # as if trained: not what a fresh head starts from
    save_head(target, tmp_path / "training_state")
    resumed = attach_auxiliary_state(tiny_act(), ENV_STATS, weight=1.0)
    assert not torch.equal(resumed.head.weight, target.head.weight)
    assert load_head(resumed, tmp_path / "training_state")
    assert torch.equal(resumed.head.weight, target.head.weight) and torch.equal(resumed.head.bias, target.head.bias)
    assert not load_head(resumed, tmp_path / "elsewhere")


@pytest.mark.parametrize("arguments, says", [
    ((-1.0, "act", True, False), "0 (off) or more"),
    ((float("nan"), "act", True, False), "0 (off) or more and finite; got nan"),
    ((float("inf"), "act", True, False), "0 (off) or more and finite; got inf"),
    ((1.0, "smolvla", True, False), "ACT preset"),
    ((1.0, "act", True, True), "already takes the object state"),
    ((1.0, "act", False, False), "so101 dataset sim --environment-state"),
])
def test_runs_that_cannot_learn_the_target_are_refused_before_training(arguments, says):
    with pytest.raises(AuxiliaryStateError, match=says.replace("(", r"\(").replace(")", r"\)")):
        check_auxiliary_state(*arguments)
    check_auxiliary_state(0.0, "smolvla", False, False)  # off: nothing to check
