"""What a CUDA graph can record, checked on this CPU: lerobot's ACT run on fake CUDA tensors.

A recording fails on a host-to-device copy or on anything that waits for the GPU (`.item()`, `.all()`
as a Python bool, boolean-mask indexing). torch's FakeTensorMode gives tensors a CUDA device without a
GPU, and a dispatch mode sees every operation the forward pass makes. cuda_graph_bf16 runs the same
operations under autocast, which fake tensors do not take (their dispatch keys are the meta device's);
it, the recording and the replay are checked on a GPU (benchmarks/gpu.sh).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from lerobot.policies.utils import prepare_observation_for_inference
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from so101_policy.checkpoint import CheckpointError, load_policy
from so101_policy.cuda_graph import forward_on_device
from so101_policy.inference_backends import with_backend
from so101_driver.joint_model import ROBOT_TYPE
from tiny_policies import tiny_act_checkpoint, tiny_smolvla_checkpoint, tiny_vlm

GPU = torch.device("cuda")
# Operations whose result the host must wait for: a recording cannot contain them.
DATA_DEPENDENT = (torch._subclasses.fake_tensor.DataDependentOutputException,
                  torch._subclasses.fake_tensor.DynamicOutputShapeException)
WAITS_FOR_THE_GPU = ("aten._local_scalar_dense", "aten.is_nonzero", "aten.nonzero", "aten.masked_select",
                     "aten.equal", "aten.unique")


class WhatRecordingForbids(TorchDispatchMode):
    """Every operation that touches a CPU tensor or waits for the GPU, by name."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name.startswith(WAITS_FOR_THE_GPU):
            self.found.append(f"{name} waits for the GPU")
        try:
            result = func(*args, **(kwargs or {}))
        except DATA_DEPENDENT:  # fake tensors cannot say a shape or value that only the GPU knows
            self.found.append(f"{name} waits for the GPU")
            raise
        tensors = torch.utils._pytree.tree_leaves((args, kwargs, result))
        if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tensors):
            self.found.append(f"{name} on the CPU")
        return result


def to_fake_gpu(module: torch.nn.Module) -> None:
    """Makes every parameter and buffer of `module` a fake CUDA tensor."""
    for submodule in module.modules():
        for name, parameter in submodule._parameters.items():
            if parameter is not None:
                submodule._parameters[name] = torch.nn.Parameter(fake_like(parameter), requires_grad=False)
        for name, buffer in submodule._buffers.items():
            if buffer is not None:
                submodule._buffers[name] = fake_like(buffer)


def fake_like(tensor: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(tensor, device=GPU)


def preprocessed_batch(loaded) -> dict:
    observation = {"observation.state": np.zeros(6, np.float32),
                   **{f"observation.images.{camera}": np.zeros((64, 64, 3), np.uint8)
                      for camera in ("wrist", "overhead")}}
    with torch.inference_mode():
        return loaded.preprocessor(prepare_observation_for_inference(observation, loaded.device, "", ROBOT_TYPE))


def record_on_fake_gpu(loaded, forward) -> list[str]:
    """What `forward(policy, batch)` does that a recording forbids, with the policy and batch on a fake GPU."""
    batch = preprocessed_batch(loaded)
    policy = copy.deepcopy(loaded.policy)
    with FakeTensorMode(allow_non_fake_inputs=True), torch.inference_mode():
        to_fake_gpu(policy)
        batch = {key: fake_like(value) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
        with WhatRecordingForbids() as forbidden:
            try:
                chunk = forward(policy, batch)
                assert chunk.device.type == "cuda" and chunk.shape == (1, loaded.config.chunk_size, 6)
            except DATA_DEPENDENT:
                pass  # recorded as found
    return forbidden.found


@pytest.fixture(scope="module")
def act(tmp_path_factory):
    return load_policy(tiny_act_checkpoint(tmp_path_factory.mktemp("act") / "pretrained_model"), "cpu")


def test_acts_forward_as_the_graph_records_it_stays_on_the_gpu_and_never_waits_for_it(act):
    assert record_on_fake_gpu(act, lambda policy, batch: forward_on_device(policy, batch, GPU)) == []


def test_lerobots_act_alone_makes_its_latent_on_the_cpu_which_would_end_a_recording(act):
    """Why the graph runs ACT under `torch.device`: without it, the check above finds the copy."""
    found = record_on_fake_gpu(act, lambda policy, batch: policy.predict_action_chunk(batch))
    assert found[0] == "aten.zeros.default on the CPU", found
    assert any(finding.startswith(("aten.to.", "aten._to_copy.")) for finding in found), found


def test_smolvlas_vision_encoder_waits_for_the_gpu_so_its_graph_is_refused(tmp_path):
    """The reason cuda_graph refuses SmolVLA; if a lerobot or transformers update removes the waits,
    this fails, and SmolVLA can be recorded too."""
    loaded = load_policy(tiny_smolvla_checkpoint(tmp_path / "smolvla", tiny_vlm(tmp_path / "vlm")), "cpu")
    found = record_on_fake_gpu(loaded, lambda policy, batch: forward_on_device(policy, batch, GPU))
    assert any("waits for the GPU" in finding for finding in found), found
    with pytest.raises(CheckpointError, match="cuda_graph runs ACT; SmolVLA's forward pass waits for the GPU.*"
                                              "use torch_bf16 or torch_compile_bf16 for SmolVLA"):
        with_backend(loaded, "cuda_graph")


@pytest.mark.parametrize("backend", ["cuda_graph", "cuda_graph_bf16"])
def test_cuda_graph_backends_stop_at_start_up_without_a_gpu(act, backend):
    with pytest.raises(CheckpointError, match=f"backend {backend} needs a CUDA GPU .device:=cuda., this is cpu: "
                                              "on a CPU use openvino_bf16"):
        with_backend(act, backend)

