"""Inference backends give lerobot's eager chunk, in radians, on the same observations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from so101_driver.joint_model import JointModel
from lerobot.policies.utils import prepare_observation_for_inference

from so101_policy.backend_names import BF16_TOLERANCE_RAD, COMPILED_BACKENDS, CUDA_BACKENDS, EXACTNESS_TOLERANCE_RAD
from so101_policy.checkpoint import CheckpointError, load_policy
from so101_policy.inference_backends import (
    describe_backend,
    exported_file,
    exported_image_encoder,
    inference_backend,
    processor_threads,
    with_backend,
)
from so101_policy.onnx_export import onnx_model
from so101_policy.onnx_runtimes import ExportedAct, ExportedImageEncoder
from so101_policy.observation import IMAGE_PREFIX, STATE_KEY, Observation
from so101_driver.joint_model import ROBOT_TYPE
from so101_policy.predictor import ChunkPredictor
from so101_policy.torch_bf16 import Bf16Policy
from tiny_policies import STATE_MEAN, STATE_STD, tiny_act_checkpoint, tiny_smolvla_checkpoint, tiny_vlm

# The CUDA graphs are checked on a GPU (benchmarks/gpu.sh) and, for what they record, in test_cuda_graph.py;
# torch.compile in test_torch_compile.py (a compilation takes 20-50 s here).
TOLERANCES = {backend.value: tolerance for backend, tolerance in EXACTNESS_TOLERANCE_RAD.items()
              if tolerance and backend.value not in (*CUDA_BACKENDS, *COMPILED_BACKENDS)}
BF16_BACKENDS = ("openvino_bf16", "torch_bf16")


def cpu_computes_in_bf16() -> bool:
    """Asked of /proc/cpuinfo, not of the code under test: the flags both bf16 backends look for."""
    with open("/proc/cpuinfo") as cpuinfo:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def skip_without_bf16(backend: str) -> None:
    if backend in BF16_BACKENDS and not cpu_computes_in_bf16():
        pytest.skip("this CPU does not compute in bf16 (no AVX512_BF16 or AMX)")


def observations(count: int, size=(64, 64), seed=0, period_s=1.0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [Observation(stamp=k * period_s, values={
        STATE_KEY: rng.normal(STATE_MEAN, STATE_STD).astype(np.float32),
        **{IMAGE_PREFIX + camera: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for camera in ("wrist", "overhead")},
    }) for k in range(count)]


@pytest.fixture(scope="module")
def act_dir(tmp_path_factory):
    return tiny_act_checkpoint(tmp_path_factory.mktemp("act") / "pretrained_model", image_shape=(3, 64, 64),
                               chunk_size=30)


@pytest.mark.parametrize("backend", list(TOLERANCES))
def test_each_backends_chunks_are_lerobots_eager_chunks(act_dir, backend):
    skip_without_bf16(backend)
    eager = ChunkPredictor(load_policy(act_dir, "cpu"), JointModel.for_sim(), task="")
    other = ChunkPredictor(with_backend(load_policy(act_dir, "cpu"), backend), JointModel.for_sim(), task="")
    assert backend.split("_")[0] in describe_backend(other.loaded)
    if backend == "torch_bf16":
        assert isinstance(other.loaded.policy, Bf16Policy) and processor_threads(other.loaded) is None
        assert other.loaded.policy.model.encoder.layers[0].linear1.weight.dtype == torch.bfloat16
    else:
        assert isinstance(other.loaded.policy, ExportedAct)
        # The runtime's pool computes the model; torch keeps one thread for lerobot's processors.
        assert processor_threads(other.loaded) == 1 and processor_threads(eager.loaded) is None
    assert_same_chunks(eager, other, TOLERANCES[backend], (30, 6))


def assert_same_chunks(eager: ChunkPredictor, other: ChunkPredictor, tolerance: float, shape,
                       period_s: float = 1.0, latency_s: float = 0.0) -> None:
    """Both predictors' chunks, in radians, on the same observations and (SmolVLA) the same flow noise."""
    differences = []
    for seed, observation in enumerate(observations(5, period_s=period_s)):
        torch.manual_seed(seed)
        expected, _ = eager.predict(observation, latency_s)
        torch.manual_seed(seed)
        found, _ = other.predict(observation, latency_s)
        assert found.shape == expected.shape == shape
        differences.append(np.abs(found - expected).max())
    assert max(differences) < tolerance, differences
    # The chunks depend on the observation: a backend that ignored its inputs would not pass this.
    chunks = []
    for observation in observations(2, seed=1):
        torch.manual_seed(0)
        chunks.append(other.predict(observation)[0])
    assert np.abs(chunks[0] - chunks[1]).max() > 4 * max(differences)


@pytest.fixture(scope="module")
def smolvla_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("smolvla")
    return tiny_smolvla_checkpoint(root / "pretrained_model", tiny_vlm(root / "vlm"))


@pytest.mark.parametrize("backend", ["torch_bf16", "onnxruntime", "openvino", "openvino_bf16"])
def test_smolvlas_chunks_on_each_backend_are_lerobots_eager_chunks(smolvla_dir, backend):
    skip_without_bf16(backend)
    for rtc in (False, True):
        eager, other = (ChunkPredictor(load_policy(smolvla_dir, "cpu", real_time_chunking=rtc), JointModel.for_sim(),
                                       task="Pick up the cube") for _ in range(2))
        other.loaded = with_backend(other.loaded, backend)
        in_bf16 = backend in BF16_BACKENDS
        assert other.loaded.policy.model.action_out_proj.weight.dtype == (torch.bfloat16 if in_bf16 else torch.float32)
        encoder = exported_image_encoder(other.loaded)
        encoded = []
        if backend == "torch_bf16":
            assert describe_backend(other.loaded) == "torch, bf16" and exported_file(other.loaded) is None
        else:
            # Only the image encoder is exported; the rest of the model stays lerobot's torch code.
            assert isinstance(encoder, ExportedImageEncoder) and encoder.path.name.startswith("smolvla_image_encoder_")
            assert exported_file(other.loaded) == encoder.path and encoder.path.parent == smolvla_dir / "onnx"
            assert describe_backend(other.loaded).endswith(f"; the rest on torch, {'bf16' if in_bf16 else 'eager'}")
            runtime = encoder.runtime
            encoder.runtime = lambda feeds: encoded.append(feeds["image"].shape) or runtime(feeds)
        # With real-time chunking, each chunk after the first is guided (by gradients through the
        # model) towards the unexecuted rest of the one before: observations 0.1 s apart leave 7 of
        # its 10 actions, the first 3 of them frozen by 0.1 s of inference.
        assert_same_chunks(eager, other, TOLERANCES[backend], (10, 6), period_s=0.1, latency_s=0.1)
        if backend != "torch_bf16":  # both cameras of every chunk went through the runtime, at the model's size
            assert encoded == [(1, 3, 32, 32)] * 2 * 7


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino_bf16"])
def test_a_smolvla_fine_tuned_from_smolvla_base_exports_its_bf16_image_encoder(tmp_path, backend):
    """lerobot loads such a checkpoint's VLM in bf16: eager torch already embeds images in bf16."""
    skip_without_bf16(backend)
    checkpoint = tiny_smolvla_checkpoint(tmp_path / "smolvla", tiny_vlm(tmp_path / "vlm"), vlm_weights=True)
    eager, other = (ChunkPredictor(load_policy(checkpoint, "cpu"), JointModel.for_sim(), task="Pick up the cube")
                    for _ in range(2))
    vision = eager.loaded.policy.model.vlm_with_expert.get_vlm_model().vision_model
    assert vision.dtype == torch.bfloat16  # as lerobot loads it: the case to cover
    other.loaded = with_backend(other.loaded, backend)
    assert isinstance(exported_image_encoder(other.loaded), ExportedImageEncoder)
    assert vision.dtype == torch.bfloat16 and vision.embeddings.patch_embedding.weight.device.type == "cpu"
    # The exported encoder computes in fp32 (onnxruntime) from the bf16 weights, eager torch in bf16.
    assert_same_chunks(eager, other, BF16_TOLERANCE_RAD, (10, 6))


def test_bf16_policys_select_action_runs_lerobots_action_queue_in_bf16(act_dir):
    skip_without_bf16("torch_bf16")
    eager, bf16 = load_policy(act_dir, "cpu"), with_backend(load_policy(act_dir, "cpu"), "torch_bf16")
    observation = observations(1)[0]
    batches = [loaded.preprocessor(prepare_observation_for_inference(dict(observation.values), loaded.device, "",
                                                                     ROBOT_TYPE)) for loaded in (eager, bf16)]
    with torch.inference_mode():
        expected = eager.policy.select_action(batches[0])
        found = bf16.policy.select_action(batches[1])
    assert found.dtype == torch.float32 and found.shape == expected.shape == (1, 6)
    assert torch.allclose(found, expected, atol=0.05)  # normalized units: bf16 rounding, not another action


def test_torch_bf16_stops_at_start_up_where_bf16_would_be_emulated(act_dir, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with pytest.raises(CheckpointError, match="torch_bf16 needs a CPU with AVX512_BF16 or AMX.*use the torch backend"):
        with_backend(load_policy(act_dir, "cpu"), "torch_bf16")


def test_the_export_is_cached_next_to_the_checkpoint_and_redone_for_other_weights(act_dir, tmp_path):
    loaded = load_policy(act_dir, "cpu")
    path = onnx_model(loaded)
    assert path.parent == act_dir / "onnx" and path.stat().st_size > 10_000
    built = path.stat().st_mtime_ns
    assert onnx_model(load_policy(act_dir, "cpu")) == path and path.stat().st_mtime_ns == built  # not exported again
    other = tiny_act_checkpoint(tmp_path / "other", image_shape=(3, 64, 64), chunk_size=30, seed=1)
    assert onnx_model(load_policy(other, "cpu")).name != path.name  # other weights, another file
    assert not list(act_dir.glob("onnx/*.partial"))


def test_backends_are_named_and_need_a_fixed_image_size_to_export(act_dir):
    with pytest.raises(CheckpointError, match=r"backend must be one of \['torch', 'torch_bf16', 'onnxruntime', "
                                              r"'openvino', 'openvino_bf16', 'torch_compile', 'torch_compile_bf16', "
                                              r"'cuda_graph', 'cuda_graph_bf16'\], "
                                              r"got 'tensorrt'"):
        inference_backend("tensorrt")
    loaded = load_policy(act_dir, "cpu")
    assert with_backend(loaded, "torch") is loaded
    smolvla = type("Loaded", (), {"type": "smolvla", "real_time_chunking": False,
                                  "config": type("Config", (), {"resize_imgs_with_padding": None})})
    with pytest.raises(CheckpointError, match=r"embeds its cameras at their own sizes.*use torch or torch_bf16"):
        with_backend(smolvla, "onnxruntime")



def test_so101_export_builds_the_file_policy_node_takes_and_says_where(act_dir, tmp_path):
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    so101 = str(Path(sys.executable).parent / "so101")
    refusals = (([str(tmp_path / "nothing")], 1, "so101 export: No checkpoint at"),
                ([str(act_dir), "--backend", "torch"], 2, "nothing to export"),
                ([str(act_dir), "--backend", "tensorrt"], 2, "error: backend must be one of"))

    def export(arguments):
        return subprocess.run([so101, "export", *arguments], capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=4) as pool:  # separate commands, mostly imports: on both cores
        result, *refused = pool.map(export, [[str(act_dir), "--backend", "openvino"], *(r[0] for r in refusals)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(onnx_model(load_policy(act_dir, "cpu")))  # the path alone: $(so101 export)
    assert "so101 export: loaded by openvino, CPU f32" in result.stderr
    for (_, code, said), outcome in zip(refusals, refused):
        assert outcome.returncode == code and said in outcome.stderr and "Traceback" not in outcome.stderr, (
            outcome.stderr)


def test_torch_backends_have_nothing_to_export(act_dir):
    from so101_bringup.export import ExportConfig

    for backend in ("torch", "torch_bf16", "torch_compile", "torch_compile_bf16", "cuda_graph", "cuda_graph_bf16"):
        with pytest.raises(ValueError, match=f"the {backend} backend runs the checkpoint as it is: there is "
                                             "nothing to export"):
            ExportConfig(checkpoint=str(act_dir), backend=backend)


def test_a_cached_export_that_cannot_be_read_says_delete_it(act_dir, tmp_path, capfd):
    """At start-up, in one line with the runtime's reason (not its source locations), and nothing else on the
    terminal; before, OpenVINO compiled an empty file into a model without inputs and failed at the first chunk."""
    import shutil

    loaded = load_policy(shutil.copytree(act_dir, tmp_path / "copy"), "cpu")
    path = onnx_model(loaded)
    cut_short = path.read_bytes()[:100_000]
    # A checkpoint folder kept in git LFS and cloned without it holds this text in place of the file.
    lfs_pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a21\nsize 206123456\n"
    for content in (cut_short, lfs_pointer, b""):
        path.write_bytes(content)
        for backend in ("onnxruntime", "openvino"):
            capfd.readouterr()
            with pytest.raises(CheckpointError) as error:
                with_backend(loaded, backend)
            message = str(error.value)
            start, end = f"{backend} cannot load the exported model {path} (", "); delete it to export again."
            assert message.startswith(start) and message.endswith(end), message
            reason = message[len(start):-len(end)]
            assert reason and "\n" not in reason and ".cpp:" not in reason, message
            assert capfd.readouterr().err == "", backend  # OpenVINO's TensorFlow reader printed its parse errors


OPENVINO_MODELS_THEN_A_SIGNAL = """
import os, signal, sys
from so101_policy.onnx_runtimes import OpenVinoModel

first, second = OpenVinoModel(sys.argv[1], "f32"), OpenVinoModel(sys.argv[1], "f32")
del first, second  # in the order they were made, as a benchmark or a test drops them
handled = []
signal.signal(signal.SIGUSR1, lambda *_: handled.append(True))  # as a DataLoader's SIGCHLD handler, a Ctrl-C
os.kill(os.getpid(), signal.SIGUSR1)
print("handled" if handled else "not handled")
"""


def test_a_signal_after_openvino_models_are_dropped_is_handled_not_a_segfault(tmp_path):
    """OpenVINO's CPU plugin swaps the main thread's signal stack per Core: two Cores dropped first-made-first
    left a freed one in place, and the suite died in a later DataLoader's SIGCHLD with no Python stack."""
    import subprocess
    import sys

    import onnx
    from onnx import TensorProto, helper

    values = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4]) for name in ("x", "y")]
    model = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", values[:1],
                                                  values[1:])), model)
    run = subprocess.run([sys.executable, "-c", OPENVINO_MODELS_THEN_A_SIGNAL, str(model)], capture_output=True,
                         text=True, timeout=120)
    assert (run.returncode, run.stdout.strip()) == (0, "handled"), (run.returncode, run.stderr[-2000:])
