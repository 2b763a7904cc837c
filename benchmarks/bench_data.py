"""Training-data throughput: lerobot's video decoding against the decoded-frame cache, side by side.

    .venv/bin/python benchmarks/bench_data.py --dataset-root DIR [--workers 0 2] [--batches 6]

The samples a training step needs, read through lerobot's DataLoader exactly as `lerobot-train`
builds it (uint8 frames, ACT's 50-action window, shuffled) from a dataset shaped like the hub's
(make one with `so101 dataset sim --width 640 --height 480`: two 640x480 AV1 cameras). Levers, each at
each worker count: lerobot's pyav decoder, its torchcodec decoder, then, on lerobot's default decoder
(torchcodec where it loads, else pyav: the baseline), cumulatively `so101 train`'s action windows read
from memory (training/delta_query_cache.py) and its frame cache (training/frame_cache.py) at ACT's
224x224 and at the videos' own size (SmolVLA, which resizes inside the model). Prints samples/s and
the ratio to the baseline at the same worker count, the cache's build time, and the samples/s a GPU
step of the issue's targets needs. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from lerobot.datasets import LeRobotDataset
from lerobot.utils.import_utils import get_safe_default_video_backend

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO))

from training.delta_query_cache import cache_delta_columns  # noqa: E402
from training.frame_cache import CACHE_FOLDER, build_frame_cache, serve_cached_frames  # noqa: E402

ACT_WINDOW = {"action": [k / 30 for k in range(50)]}
# The targets at batch 64: what the loader must deliver for the data wait to vanish.
TARGET_SAMPLES_PER_S = {"ACT 0.12 s/step": 64 / 0.12, "SmolVLA 0.35 s/step": 64 / 0.35}
# lerobot's own choice, the baseline: torchcodec, or pyav where torchcodec cannot load its FFmpeg
# libraries (the GPU machine has none).
DECODER = get_safe_default_video_backend()
LEVERS = {  # name: (video backend, action windows from memory, frame cache size: "none", or None: the videos')
    "pyav": ("pyav", False, "none"),
    "torchcodec": ("torchcodec", False, "none"),
    "+ action cache": (DECODER, True, "none"),  # so101 train's default
    "+ frames 224x224": (DECODER, True, (224, 224)),
    "+ frames native": (DECODER, True, None),
}
USABLE_LEVERS = [name for name in LEVERS if name != "torchcodec" or DECODER == "torchcodec"]


def dataset_for(root: Path, repo_id: str, lever: str) -> LeRobotDataset:
    return LeRobotDataset(repo_id, root=root, delta_timestamps=ACT_WINDOW, video_backend=LEVERS[lever][0],
                          return_uint8=True)


def samples_per_s(root: Path, repo_id: str, lever: str, workers: int, batch_size: int, batches: int) -> float:
    """Run in a process of its own: lerobot's decoders opened in a process must not be forked into workers."""
    dataset = dataset_for(root, repo_id, lever)
    _, action_cache, frame_cache = LEVERS[lever]
    if action_cache:
        cache_delta_columns(dataset)
    if frame_cache != "none":
        serve_cached_frames(dataset, frame_cache)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0),
                                         persistent_workers=False, prefetch_factor=2 if workers else None)
    batches_read = iter(loader)
    next(batches_read)  # workers started, decoders opened
    started = time.perf_counter()
    samples = sum(len(next(batches_read)["index"]) for _ in range(batches))
    return samples / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-root", type=Path, required=True)
    parser.add_argument("--repo-id", default="local/so101_sim_480")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=6, help="batches timed per lever, after the first")
    parser.add_argument("--levers", nargs="+", default=USABLE_LEVERS, choices=list(LEVERS))
    parser.add_argument("--keep-cache", action="store_true", help="leave the caches in the dataset root")
    parser.add_argument("--output", default="outputs/benchmarks/data.json")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    print(f"{args.repo_id} at {args.dataset_root}; {platform.processor() or platform.machine()}, {cores} cores")
    caches = args.dataset_root / CACHE_FOLDER
    existed = caches.exists()
    builds, rows = {}, []
    for name in args.levers:
        size = LEVERS[name][2]
        if size != "none":
            info = build_frame_cache(dataset_for(args.dataset_root, args.repo_id, name), size)
            builds[name] = {"built_s": info.built_s, "gigabytes": info.gigabytes, "frames": info.frames,
                            "frames_per_s": round(info.frames * len(info.cameras) / info.built_s, 1)
                            if info.built_s else None}
            print(f"{name}: built in {info.built_s} s ({builds[name]['frames_per_s']} camera frames/s on "
                  f"{cores} processes), {info.gigabytes} GB", flush=True)
        for workers in args.workers:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as measure:
                rate = measure.submit(samples_per_s, args.dataset_root, args.repo_id, name, workers,
                                      args.batch_size, args.batches).result()
            rows.append({"lever": name, "workers": workers, "samples_per_s": round(rate, 1)})
            print(f"{name:17s} workers {workers:2d}: {rate:8.1f} samples/s", flush=True)
    baseline = {row["workers"]: row["samples_per_s"] for row in rows if row["lever"] == DECODER}
    print(f"\nlever              workers  samples/s  vs {DECODER}")
    for row in rows:
        ratio = row["samples_per_s"] / baseline[row["workers"]] if row["workers"] in baseline else None
        row["vs_baseline"] = None if ratio is None else round(ratio, 2)
        print(f"{row['lever']:17s} {row['workers']:8d} {row['samples_per_s']:10.1f}  "
              + (f"{ratio:.2f}x" if ratio else "-"))
    for target, needed in TARGET_SAMPLES_PER_S.items():
        print(f"{target} at batch 64 needs {needed:.0f} samples/s ({2 * needed:.0f} camera frames/s)")
    if not args.keep_cache and not existed:
        shutil.rmtree(caches, ignore_errors=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"dataset": args.repo_id, "cores": cores, "batch_size": args.batch_size,
                                  "baseline_decoder": DECODER,
                                  "rows": rows, "cache_builds": builds,
                                  "needed_samples_per_s": TARGET_SAMPLES_PER_S}, indent=2) + "\n")
    print(f"-> {output}")


if __name__ == "__main__":
    main()
