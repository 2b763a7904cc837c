"""An auxiliary object-state target for a vision ACT, during training only.

A linear head reads the transformer encoder's image tokens and predicts the sim's object state
(observation.environment_state: the cube's pose and the target's position), which the policy itself
never sees; its mean squared error, weighted, is added to ACT's loss. The gradient asks the backbone
and the encoder to carry where the cube is, which the action loss alone teaches slowly from 64x64
frames (rung b of the README's ladder).

The head is not part of the checkpoint: `pretrained_model/` holds exactly a plain lerobot ACT's tensors,
which lerobot and the policy node (strict) load unchanged. So that a resumed run goes on with the head it had, its
weights are kept beside lerobot's optimizer state, in `training_state/` (HEAD_FILE).
"""

from __future__ import annotations

import types
from pathlib import Path

import torch
from torch import nn

from so101_driver.environment_state import ENVIRONMENT_STATE_KEY

from .configs import check_aux_object_state

HEAD_NAME = "so101_auxiliary_state_head"
HEAD_FILE = "so101_auxiliary_state_head.safetensors"
# Components that barely vary (the cube's roll and pitch on the table) would be amplified noise once divided by
# their own spread and dominate the error: no component is divided by less than 1 cm (or 0.01 of a quaternion).
STD_FLOOR = 0.01


class AuxiliaryStateError(ValueError):
    """A run that cannot train the auxiliary target; the message says why and what to do."""


def check_auxiliary_state(weight: float, policy_type: str, has_environment_state: bool,
                          policy_sees_environment_state: bool) -> None:
    """Refuse, before any training, the runs where the target cannot or must not be trained."""
    try:
        check_aux_object_state(weight)
    except ValueError as error:
        raise AuxiliaryStateError(str(error)) from None
    if weight == 0:
        return
    if policy_type != "act":
        raise AuxiliaryStateError(f"--aux-object-state reads ACT's transformer encoder; this preset trains "
                                  f"{policy_type}. Use an ACT preset, or leave it out")
    if policy_sees_environment_state:
        raise AuxiliaryStateError("--aux-object-state teaches a vision policy where the objects are; this preset "
                                  "already takes the object state as an input. Leave it out")
    if not has_environment_state:
        raise AuxiliaryStateError(f"--aux-object-state needs the dataset to record the sim's object state "
                                  f"({ENVIRONMENT_STATE_KEY}), which this one does not: record one with "
                                  "`so101 dataset sim --environment-state`")


class AuxiliaryStateTarget(nn.Module):
    """The head and the target's normalisation."""

    def __init__(self, policy, stats: dict, weight: float):
        super().__init__()
        config = policy.config
        if config.env_state_feature is not None:
            raise AuxiliaryStateError("the policy takes the object state as an input; it cannot also be its target")
        if not config.image_features:
            raise AuxiliaryStateError("the policy sees no camera: there are no image tokens to predict from")
        mean = torch.as_tensor(stats["mean"], dtype=torch.float32).flatten()
        std = torch.as_tensor(stats["std"], dtype=torch.float32).flatten().clamp_min(STD_FLOOR)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.weight = weight
        # The encoder's tokens are [latent, robot state, the cameras' feature cells...] (lerobot's ACT.forward).
        self.first_image_token = 1 + int(config.robot_state_feature is not None)
        self.image_tokens = _image_token_count(policy)
        self.head = nn.Linear(self.image_tokens * config.dim_model, mean.numel())
        self.encoder_out: torch.Tensor | None = None

    def loss(self, batch: dict) -> torch.Tensor:
        """The error of the last encoder pass's prediction, in units of the (floored) spread of each component."""
        tokens = self.encoder_out[self.first_image_token:]  # (image tokens, batch, dim)
        if tokens.shape[0] != self.image_tokens:
            raise AuxiliaryStateError(f"expected {self.image_tokens} image tokens from the encoder, found "
                                      f"{tokens.shape[0]}: the cameras' image size changed after the head was made")
        features = tokens.permute(1, 0, 2).flatten(1)
        predicted = self.head(features).float()
        target = (batch[ENVIRONMENT_STATE_KEY].float() - self.mean) / self.std
        return nn.functional.mse_loss(predicted, target)


def _image_token_count(policy) -> int:
    """Feature cells per camera times cameras, measured by the backbone itself on a blank frame."""
    config = policy.config
    backbone = policy.model.backbone
    was_training = backbone.training
    backbone.eval()  # a blank frame must not move the batch norm statistics
    try:
        with torch.no_grad():
            cells = 0
            for feature in config.image_features.values():
                blank = torch.zeros(1, *feature.shape, device=next(backbone.parameters()).device)
                cells += backbone(blank)["feature_map"][0, 0].numel()
    finally:
        backbone.train(was_training)
    return cells


def attach_auxiliary_state(policy, stats: dict, weight: float) -> AuxiliaryStateTarget:
    """Train `policy` (a lerobot ACTPolicy) with the auxiliary target from now on; returns it.

    The head becomes a submodule of the policy, so lerobot's optimizer (ACT's parameter groups), gradient
    clipping and device moves take it as they take the policy's own layers; it is left out when the
    policy is saved."""
    target = AuxiliaryStateTarget(policy, stats, weight)
    device = next(policy.parameters()).device
    target.to(device)
    policy.add_module(HEAD_NAME, target)
    policy.model.encoder.register_forward_hook(lambda module, inputs, output: setattr(target, "encoder_out", output))
    policy_class = type(policy)

    def forward(self, batch, *args, **kwargs):
        loss, output = policy_class.forward(self, batch, *args, **kwargs)
        if not self.training:
            return loss, output
        auxiliary = target.loss(batch)
        # lerobot's MetricsTracker averages every number of this dict (update_metrics) beside its loss.
        output = dict(output or {}, aux_state_mse=float(auxiliary.detach()))
        return loss + target.weight * auxiliary, output

    def _save_pretrained(self, save_directory, state_dict=None):
        if state_dict is not None:  # gathered by lerobot (FSDP), the head's tensors among them
            state_dict = {key: value for key, value in state_dict.items() if not key.startswith(HEAD_NAME + ".")}
        head = self._modules.pop(HEAD_NAME)
        try:
            return policy_class._save_pretrained(self, save_directory, state_dict=state_dict)
        finally:
            self._modules[HEAD_NAME] = head

    # Bound methods: accelerate's mixed precision wraps `forward.__func__` of the instance.
    policy.forward = types.MethodType(forward, policy)
    policy._save_pretrained = types.MethodType(_save_pretrained, policy)
    return target


def save_head(target: AuxiliaryStateTarget, training_state_dir: Path) -> None:
    from safetensors.torch import save_file

    training_state_dir.mkdir(parents=True, exist_ok=True)
    save_file({key: value.detach().cpu().contiguous() for key, value in target.head.state_dict().items()},
              str(training_state_dir / HEAD_FILE))


def load_head(target: AuxiliaryStateTarget, training_state_dir: Path) -> bool:
    """The head a resumed run had; False where its checkpoint has none (the head starts afresh)."""
    from safetensors.torch import load_file

    path = training_state_dir / HEAD_FILE
    if not path.is_file():
        return False
    target.head.load_state_dict(load_file(str(path), device=str(target.mean.device)))
    return True
