"""A user's first `so101 train`: the hub dataset (v2.1) downloaded through HF_ENDPOINT, converted once, trained on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from legacy_dataset import write_v21_dataset
from local_hub import local_hub
from test_training import FAST, TINY_ACT
from training.presets import DEFAULT_DATASET

SO101 = str(Path(sys.executable).parent / "so101")


def test_the_first_training_run_downloads_converts_once_and_trains(tmp_path):
    hub_copy = write_v21_dataset(tmp_path / "hub" / DEFAULT_DATASET, episodes=2, frames_per_episode=12)
    with local_hub({DEFAULT_DATASET: hub_copy}) as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"),
               "HF_LEROBOT_HOME": str(tmp_path / "lerobot"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        env.pop("HF_HUB_OFFLINE", None)

        def train(run: str) -> subprocess.CompletedProcess:
            # As in the README, with no --dataset: the reference dataset, from the hub.
            result = subprocess.run([SO101, "train", "act_dual", "--output-dir", str(tmp_path / run), *TINY_ACT, *FAST,
                                     "--steps=2", "--save_freq=2", "--resize-with-pad", "32x40"],
                                    capture_output=True, text=True, timeout=900, env=env)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            return result

        first = train("first")
        fetched = hub.downloads(DEFAULT_DATASET)
        assert sorted(set(fetched)) == sorted(str(p.relative_to(hub_copy)) for p in hub_copy.rglob("*") if p.is_file())
        assert "converting it once" in first.stderr
        converted = tmp_path / "lerobot" / "so101_converted" / DEFAULT_DATASET
        assert json.loads((converted / "meta" / "info.json").read_text())["codebase_version"] == "v3.0"
        assert (tmp_path / "first" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()

        second = train("second")  # only the version is asked again; the conversion is reused
        assert hub.downloads(DEFAULT_DATASET)[len(fetched):] in ([], ["meta/info.json"])
        assert "using its v3.0 conversion" in second.stderr and "converting" not in second.stderr
        train_config = json.loads((tmp_path / "second" / "checkpoints" / "last" / "pretrained_model"
                                   / "train_config.json").read_text())
        assert train_config["dataset"]["repo_id"] == DEFAULT_DATASET
        assert Path(train_config["dataset"]["root"]) == converted
