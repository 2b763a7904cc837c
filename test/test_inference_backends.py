"""Inference backends give lerobot's eager chunk, in radians, on the same observations."""

from __future__ import annotations

import numpy as np
import pytest

from so101_driver.joint_model import JointModel
from so101_policy.checkpoint import CheckpointError, load_policy
from so101_policy.inference_backends import (
    ExportedAct,
    describe_backend,
    inference_backend,
    onnx_model,
    processor_threads,
    with_backend,
)
from so101_policy.observation import IMAGE_PREFIX, STATE_KEY, Observation
from so101_policy.predictor import ChunkPredictor
from tiny_policies import STATE_MEAN, STATE_STD, tiny_act_checkpoint

# fp32 backends: the chunks may differ by float rounding only, far below an encoder tick (1.5e-3 rad).
FP32_TOLERANCE_RAD = 1e-3
# bf16 keeps 8 bits of mantissa (a relative error of 2^-9 per rounding): full ACT's chunks stay within
# 0.005 rad of eager fp32 (benchmarks/bench_backends.py). Allowed: 0.02 rad, about one degree, a
# fifth of the driver's per-tick step limit (max_relative_target, 0.1 rad).
BF16_TOLERANCE_RAD = 0.02
TOLERANCES = {"onnxruntime": FP32_TOLERANCE_RAD, "openvino": FP32_TOLERANCE_RAD, "openvino_bf16": BF16_TOLERANCE_RAD}


def cpu_computes_in_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def observations(count: int, size=(64, 64), seed=0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [Observation(stamp=float(k), values={
        STATE_KEY: rng.normal(STATE_MEAN, STATE_STD).astype(np.float32),
        **{IMAGE_PREFIX + camera: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for camera in ("wrist", "overhead")},
    }) for k in range(count)]


@pytest.fixture(scope="module")
def act_dir(tmp_path_factory):
    return tiny_act_checkpoint(tmp_path_factory.mktemp("act") / "pretrained_model", image_shape=(3, 64, 64),
                               chunk_size=30)


@pytest.mark.parametrize("backend", list(TOLERANCES))
def test_each_backends_chunks_are_lerobots_eager_chunks(act_dir, backend):
    if backend == "openvino_bf16" and not cpu_computes_in_bf16():
        pytest.skip("this CPU does not compute in bf16 (no AVX512_BF16 or AMX)")
    eager = ChunkPredictor(load_policy(act_dir, "cpu"), JointModel.for_sim(), task="")
    exported = ChunkPredictor(with_backend(load_policy(act_dir, "cpu"), backend), JointModel.for_sim(), task="")
    assert isinstance(exported.loaded.policy, ExportedAct)
    assert backend.split("_")[0] in describe_backend(exported.loaded)
    # The runtime's pool computes the model; torch keeps one thread for lerobot's processors.
    assert processor_threads(exported.loaded) == 1 and processor_threads(eager.loaded) is None
    differences = []
    for observation in observations(5):
        expected, _ = eager.predict(observation)
        found, _ = exported.predict(observation)
        assert found.shape == expected.shape == (30, 6)
        differences.append(np.abs(found - expected).max())
    assert max(differences) < TOLERANCES[backend], differences
    # The chunks depend on the observation: a backend that ignored its inputs would not pass this.
    first, second = (exported.predict(o)[0] for o in observations(2, seed=1))
    assert np.abs(first - second).max() > 2 * TOLERANCES[backend]


def test_the_export_is_cached_next_to_the_checkpoint_and_redone_for_other_weights(act_dir, tmp_path):
    loaded = load_policy(act_dir, "cpu")
    path = onnx_model(loaded)
    assert path.parent == act_dir / "onnx" and path.stat().st_size > 10_000
    built = path.stat().st_mtime_ns
    assert onnx_model(load_policy(act_dir, "cpu")) == path and path.stat().st_mtime_ns == built  # not exported again
    other = tiny_act_checkpoint(tmp_path / "other", image_shape=(3, 64, 64), chunk_size=30, seed=1)
    assert onnx_model(load_policy(other, "cpu")).name != path.name  # other weights, another file
    assert not list(act_dir.glob("onnx/*.partial"))


def test_backends_are_named_and_smolvla_stays_on_torch(act_dir):
    with pytest.raises(CheckpointError, match=r"backend must be one of \['torch', 'onnxruntime', 'openvino', "
                                              r"'openvino_bf16'\], got 'tensorrt'"):
        inference_backend("tensorrt")
    loaded = load_policy(act_dir, "cpu")
    assert with_backend(loaded, "torch") is loaded
    smolvla = type("Loaded", (), {"type": "smolvla"})()
    with pytest.raises(CheckpointError, match="runs ACT checkpoints; this one is smolvla"):
        with_backend(smolvla, "onnxruntime")



def test_so101_export_builds_the_file_policy_node_takes_and_says_where(act_dir, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    so101 = str(Path(sys.executable).parent / "so101")
    result = subprocess.run([so101, "export", str(act_dir), "--backend", "openvino"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(onnx_model(load_policy(act_dir, "cpu")))  # the path alone: $(so101 export)
    assert "so101 export: loaded by openvino, CPU f32" in result.stderr
    for arguments, said in (([str(tmp_path / "nothing")], "so101 export: No checkpoint at"),
                            ([str(act_dir), "--backend", "torch"], "nothing to export"),
                            ([str(act_dir), "--backend", "tensorrt"], "backend must be one of")):
        refused = subprocess.run([so101, "export", *arguments], capture_output=True, text=True, timeout=300)
        assert refused.returncode == 1 and said in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


def test_a_cached_export_that_cannot_be_read_says_delete_it(act_dir, tmp_path):
    import shutil

    checkpoint = shutil.copytree(act_dir, tmp_path / "copy")
    path = onnx_model(load_policy(checkpoint, "cpu"))
    path.write_bytes(b"not an onnx model")
    for backend in ("onnxruntime", "openvino"):
        with pytest.raises(CheckpointError, match=f"{backend} cannot load the exported model .*delete it"):
            with_backend(load_policy(checkpoint, "cpu"), backend)
