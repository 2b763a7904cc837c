"""torch_compile backends: lerobot's chunks, compiled once, at start-up."""

from __future__ import annotations

import pytest
from torch._dynamo.utils import counters

from so101_driver.joint_model import JointModel
from so101_policy.backend_names import EXACTNESS_TOLERANCE_RAD, InferenceBackend
from so101_policy.checkpoint import CheckpointError, load_policy
from so101_policy.inference_backends import describe_backend, with_backend
from so101_policy.predictor import ChunkPredictor
from test_inference_backends import assert_same_chunks, skip_without_bf16
from tiny_policies import tiny_act_checkpoint, tiny_smolvla_checkpoint, tiny_vlm


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process so far."""
    return counters["stats"]["unique_graphs"]


def check_compiled_backend(checkpoint, backend: str, shape, task: str = "") -> None:
    eager, other = (ChunkPredictor(load_policy(checkpoint, "cpu"), JointModel.for_sim(), task=task) for _ in range(2))
    other.loaded = with_backend(other.loaded, backend)
    assert describe_backend(other.loaded) == f"torch.compile{', bf16' if backend.endswith('bf16') else ''}"
    before = compiled_graphs()
    other.warm_up()
    compiled = compiled_graphs()
    assert compiled > before  # the warm-up compiled...
    assert_same_chunks(eager, other, EXACTNESS_TOLERANCE_RAD[InferenceBackend(backend)], shape)
    assert compiled_graphs() == compiled  # ...so no chunk after it compiled again


def test_compiled_act_in_bf16_gives_lerobots_chunks_and_compiles_only_at_warm_up(tmp_path):
    skip_without_bf16("torch_bf16")
    checkpoint = tiny_act_checkpoint(tmp_path / "act", chunk_size=30)
    check_compiled_backend(checkpoint, "torch_compile_bf16", (30, 6))


def test_compiled_smolvla_gives_lerobots_chunks_and_compiles_only_at_warm_up(tmp_path):
    """SmolVLA's vision embeddings break the graph (boolean-mask indexing): compiled parts with eager
    operations between them, still lerobot's chunk. A wrist-only checkpoint, given observations of both
    cameras: before, the extra camera reached the compiled model's batch and compiled it again at the
    first chunk after the warm-up."""
    checkpoint = tiny_smolvla_checkpoint(tmp_path / "smolvla", tiny_vlm(tmp_path / "vlm"), cameras=("wrist",))
    check_compiled_backend(checkpoint, "torch_compile", (10, 6), task="Pick up the cube")


def test_compiled_backends_refuse_real_time_chunking(tmp_path):
    checkpoint = tiny_smolvla_checkpoint(tmp_path / "smolvla", tiny_vlm(tmp_path / "vlm"))
    with pytest.raises(CheckpointError, match=r"backend torch_compile cannot run real-time chunking \(mode rtc, "
                                              r"SmolVLA's default\).*Use mode async, or the torch_bf16 backend"):
        with_backend(load_policy(checkpoint, "cpu", real_time_chunking=True), "torch_compile")


def test_a_compiled_smolvla_takes_frames_of_the_size_it_was_compiled_for(tmp_path):
    """SmolVLA resizes in its model, so eager takes any frame size; compiled, another size would compile
    again mid-episode (minutes on a CPU), so it is refused at the first frame, before anything is inferred."""
    from so101_policy.predictor import FrameSizeError
    from test_inference_backends import observations

    checkpoint = tiny_smolvla_checkpoint(tmp_path / "smolvla", tiny_vlm(tmp_path / "vlm"))
    eager, compiled = (ChunkPredictor(with_backend(load_policy(checkpoint, "cpu"), backend), JointModel.for_sim(),
                                      task="Pick up the cube") for backend in ("torch", "torch_compile"))
    assert eager.frame_sizes == {} and compiled.frame_sizes == {"overhead": (64, 64), "wrist": (64, 64)}
    with pytest.raises(FrameSizeError, match="camera 'overhead' sends 48x32 frames; the checkpoint was trained on "
                                             r"64x64 \(its model, compiled for that size\)"):
        compiled.predict(observations(1, size=(32, 48))[0])
