"""Camera frames decoded once, at the training resolution, then read from a memory map while training.

lerobot's reader decodes each sample's camera frames from the dataset's videos (the hub dataset:
640x480 AV1): every step of a run decodes batch x cameras frames again, and that decoding, not the
model, bounds training on a GPU (issue 12). `so101 train --frame-cache` decodes every frame once
through lerobot's own decoder, resizes it as the run's resize-with-pad step would, and keeps the
result as uint8 in `<dataset root>/so101_frame_cache/<HxW>/`, one file per camera. The reader then
answers a sample's frames by indexing that file: the same frames, already at the size the model
sees (the resize step leaves a frame of its target size as it is). The only difference from
lerobot's path is the rounding of the resized frame to uint8: at most half a grey level.

The cache is found again by the dataset's video files (names and sizes) and rebuilt when they change;
it is written to a temporary folder and renamed into place, so an interrupted build leaves none behind.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from so101_policy.resize_with_pad import resize_with_pad

CACHE_FOLDER = "so101_frame_cache"
MANIFEST = "manifest.json"
DECODE_BATCH = 32  # frames decoded at once while building: ~30 MB at 640x480


class FrameCacheError(RuntimeError):
    """A cache that cannot be built (no video, no room); the message says what to do."""


@dataclass(frozen=True)
class FrameCacheInfo:
    path: str
    size: list[int] | None  # [height, width]; None: the videos' own
    cameras: list[str]
    frames: int
    gigabytes: float
    built_s: float | None  # None: found, not built


def cache_path(dataset_root: Path, size: tuple[int, int] | None) -> Path:
    return Path(dataset_root) / CACHE_FOLDER / ("native" if size is None else f"{size[0]}x{size[1]}")


def _frame_shape(meta, key: str, size: tuple[int, int] | None) -> tuple[int, int, int]:
    height, width, channels = meta.features[key]["shape"]
    return (channels, *size) if size is not None else (channels, height, width)


def _fingerprint(meta, root: Path, keys: list[str], episodes: list[int]) -> dict:
    """What the cache was built from: the episodes, each video file's name and size, the frame count and fps."""
    videos = sorted({str(meta.get_video_file_path(episode, key)) for episode in episodes for key in keys})
    return {"total_frames": meta.total_frames, "fps": meta.fps, "episodes": episodes,
            "videos": {name: (root / name).stat().st_size for name in videos}}


def _manifest(dataset, keys: list[str], size: tuple[int, int] | None) -> dict:
    meta = dataset.meta
    episodes = sorted(dataset.episodes) if dataset.episodes is not None else list(range(meta.total_episodes))
    return {"size": None if size is None else list(size), "cameras": keys,
            "shapes": {key: list(_frame_shape(meta, key, size)) for key in keys},
            "source": _fingerprint(meta, Path(dataset.root), keys, episodes)}


def _open(folder: Path, manifest: dict, key: str, mode: str) -> np.memmap:
    shape = (manifest["source"]["total_frames"], *manifest["shapes"][key])
    return np.memmap(folder / f"{key}.u8", dtype=np.uint8, mode=mode, shape=shape)


def _to_cached(frames: torch.Tensor, size: tuple[int, int] | None) -> np.ndarray:
    """lerobot's uint8 (N, C, H, W) frames as the cache stores them: resized as the resize step does."""
    if size is None:
        return frames.numpy()
    resized = resize_with_pad(frames.float() / 255.0, *size)
    return (resized * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def _build_episode(job: tuple) -> int:
    """Decode one episode's frames of every camera through lerobot's decoder into the cache's files."""
    from lerobot.datasets.video_utils import decode_video_frames

    torch.set_num_threads(1)  # one process per core
    folder, root, manifest, video_paths, rows, backend, tolerance_s, size = job
    for key, (video_path, timestamps) in video_paths.items():
        cache = _open(folder, manifest, key, "r+")
        for start in range(0, len(rows), DECODE_BATCH):
            batch = slice(start, start + DECODE_BATCH)
            frames = decode_video_frames(root / video_path, timestamps[batch], tolerance_s, backend,
                                         return_uint8=True)
            cache[rows[batch]] = _to_cached(frames, size)
        cache.flush()
    return len(rows)


def _episode_jobs(dataset, folder: Path, manifest: dict, size, backend: str) -> list[tuple]:
    meta, reader = dataset.meta, dataset._ensure_reader()
    if reader.hf_dataset is None:
        reader.load_and_activate()
    columns = reader.hf_dataset.with_format("numpy", columns=["index", "episode_index", "timestamp"])[:]
    jobs = []
    for episode in sorted(set(columns["episode_index"].tolist())):
        mine = columns["episode_index"] == episode
        rows, timestamps = columns["index"][mine], columns["timestamp"][mine]
        info = meta.episodes[int(episode)]
        videos = {key: (meta.get_video_file_path(int(episode), key),
                        [float(info[f"videos/{key}/from_timestamp"]) + float(t) for t in timestamps])
                  for key in manifest["cameras"]}
        jobs.append((folder, dataset.root, manifest, videos, rows, backend, dataset.tolerance_s, size))
    return jobs


def build_frame_cache(dataset, size: tuple[int, int] | None, workers: int = 0,
                      backend: str | None = None) -> FrameCacheInfo:
    """The cache of `dataset` (a LeRobotDataset) at `size`, found or built with `workers` processes (0: cores)."""
    meta = dataset.meta
    keys = [key for key in meta.video_keys if key not in meta.depth_keys]
    if not keys:
        raise FrameCacheError(f"{dataset.repo_id} stores no camera videos (its images are already decoded "
                              "frames): train without --frame-cache")
    root = Path(dataset.root)
    folder = cache_path(root, size)
    manifest = _manifest(dataset, keys, size)
    nbytes = sum(meta.total_frames * int(np.prod(shape)) for shape in manifest["shapes"].values())
    info = FrameCacheInfo(str(folder), manifest["size"], keys, meta.total_frames, round(nbytes / 1e9, 2), None)
    if (folder / MANIFEST).is_file() and json.loads((folder / MANIFEST).read_text()) == manifest:
        return info

    shutil.rmtree(folder, ignore_errors=True)  # built from other videos
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if nbytes > free * 0.9:
        raise FrameCacheError(f"the frame cache of {dataset.repo_id} at {info.size or 'its videos size'} needs "
                              f"{nbytes / 1e9:.1f} GB and {folder.parent} has {free / 1e9:.1f} GB free: free "
                              "space, choose a smaller --resize-with-pad, or train without --frame-cache")
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for key in keys:
        _open(partial, manifest, key, "w+").flush()  # sized files, written in place by the workers
    started = time.monotonic()
    jobs = _episode_jobs(dataset, partial, manifest, size, backend or dataset._ensure_reader()._video_backend)
    processes = min(workers or len(os.sched_getaffinity(0)), len(jobs))
    description = f"frame cache {folder.name} ({nbytes / 1e9:.1f} GB)"
    try:
        with tqdm(total=meta.total_frames, desc=description, unit="frame") as progress:
            if processes <= 1:
                for job in jobs:
                    progress.update(_build_episode(job))
            else:
                # spawn: the parent holds torch's and the decoders' threads, which fork would copy half-alive.
                with multiprocessing.get_context("spawn").Pool(processes) as pool:
                    for frames in pool.imap_unordered(_build_episode, jobs):
                        progress.update(frames)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return FrameCacheInfo(**{**asdict(info), "built_s": round(time.monotonic() - started, 1)})


class CachedVideoQuery:
    """Stands in for a DatasetReader's _query_videos: the frames nearest each timestamp, from the cache.

    The memory maps open in the process that reads them (each DataLoader worker), never pickled.
    """

    def __init__(self, reader, folder: Path):
        self.reader = reader
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        self.original = reader._query_videos
        self._caches: dict[str, np.memmap] = {}
        self._episodes: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_caches": {}}

    def _episode_frames(self, episode: int) -> tuple[np.ndarray, np.ndarray]:
        """The episode's (timestamps, absolute indices), in frame order."""
        if episode not in self._episodes:
            info = self.reader._meta.episodes[episode]
            start, end = int(info["dataset_from_index"]), int(info["dataset_to_index"])
            to_relative = self.reader._absolute_to_relative_idx
            rows = [to_relative[index] for index in range(start, end)] if to_relative else list(range(start, end))
            timestamps = np.array([float(t) for t in self.reader.hf_dataset[rows]["timestamp"]])
            self._episodes[episode] = timestamps, np.arange(start, end)
        return self._episodes[episode]

    def _frames(self, key: str, indices: np.ndarray) -> torch.Tensor:
        if key not in self._caches:
            self._caches[key] = _open(self.folder, self.manifest, key, "r")
        frames = torch.from_numpy(np.ascontiguousarray(self._caches[key][indices]))
        return frames if self.reader._return_uint8 else frames.float() / 255.0

    def __call__(self, query_timestamps: dict[str, list[float]], ep_idx: int) -> dict[str, torch.Tensor]:
        rest = {key: ts for key, ts in query_timestamps.items() if key not in self.manifest["cameras"]}
        result = self.original(rest, ep_idx) if rest else {}
        timestamps, indices = self._episode_frames(ep_idx)
        for key, query in query_timestamps.items():
            if key in rest:
                continue
            query = np.asarray(query, dtype=np.float64)
            nearest = np.abs(timestamps[None, :] - query[:, None]).argmin(axis=1)
            worst = np.abs(timestamps[nearest] - query).max()
            if worst > self.reader._tolerance_s:
                raise FrameCacheError(f"{key}: no cached frame within {self.reader._tolerance_s} s of a queried "
                                      f"timestamp of episode {ep_idx} (off by {worst:.4f} s)")
            result[key] = self._frames(key, indices[nearest]).squeeze(0)
        return result


def serve_cached_frames(dataset, size: tuple[int, int] | None, workers: int = 0) -> FrameCacheInfo | None:
    """Build or find `dataset`'s frame cache and have its reader take camera frames from it."""
    from lerobot.datasets import LeRobotDataset

    if not isinstance(dataset, LeRobotDataset):
        return None  # a streaming dataset has no local videos to cache
    info = build_frame_cache(dataset, size, workers)
    reader = dataset._ensure_reader()
    reader._query_videos = CachedVideoQuery(reader, Path(info.path))
    return info
