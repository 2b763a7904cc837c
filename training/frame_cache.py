"""Camera frames decoded once, at the training resolution, then read from a memory map while training.

lerobot's reader decodes each sample's camera frames from the dataset's videos (the hub dataset:
640x480 AV1): every step of a run decodes batch x cameras frames again, and that decoding, not the
model, bounds training on a GPU (issue 12). `so101 train --frame-cache` decodes every frame once
through lerobot's own decoder, resizes it as the run's resize-with-pad step would, and keeps the
result as uint8 in `<dataset root>/so101_frame_cache/<HxW>-<hash>/`, one file per camera. The reader
then answers a sample's frames by indexing that file: the same frames, already at the size the model
sees (the resize step leaves a frame of its target size as it is). The only difference from
lerobot's path is the rounding of the resized frame to uint8: at most half a grey level. (lerobot's
image augmentations, off in every preset, then apply to the padded frame rather than the camera's.)

A cache is named by a hash of what it holds (size, episodes, the video files' names and sizes, the
format), so another episode set or size gets a folder of its own and a cache in use is never
replaced under a reader. It is written to a temporary folder, its files allocated in full first
(a full disk fails there, not mid-build), and renamed into place; a folder a killed build left is
removed by the next build.
"""

from __future__ import annotations

import hashlib
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
# Changes whenever what a cached frame is changes (the resize, its rounding): older caches are not found.
CACHE_FORMAT = "1: so101 resize_with_pad (bilinear, antialiased, centred, black padding), rounded to uint8"
DECODE_BATCH = 32  # frames decoded at once while building: ~30 MB at 640x480
# Starting spawned processes costs ~10 s on 2 cores, the decoding of ~2,000 frames there.
POOL_MIN_FRAMES = 4000


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


def _size_name(size) -> str:
    return "native" if size is None else f"{size[0]}x{size[1]}"


def _bytes_text(nbytes: int) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"


def _frame_shape(meta, key: str, size: tuple[int, int] | None) -> tuple[int, int, int]:
    height, width, channels = meta.features[key]["shape"]
    return (channels, *size) if size is not None else (channels, height, width)


def _manifest(dataset, keys: list[str], size: tuple[int, int] | None) -> dict:
    """What the cache holds and was built from; `offsets`: each episode's first row in the files."""
    meta, root = dataset.meta, Path(dataset.root)
    episodes = sorted(dataset.episodes) if dataset.episodes is not None else list(range(meta.total_episodes))
    offsets, rows = {}, 0
    for episode in episodes:
        offsets[str(episode)] = rows
        rows += int(meta.episodes[episode]["length"])
    videos = sorted({str(meta.get_video_file_path(episode, key)) for episode in episodes for key in keys})
    return {"format": CACHE_FORMAT, "size": None if size is None else list(size), "cameras": keys,
            "shapes": {key: list(_frame_shape(meta, key, size)) for key in keys}, "rows": rows, "fps": meta.fps,
            "offsets": offsets, "videos": {name: (root / name).stat().st_size for name in videos}}


def cache_path(dataset_root: Path, manifest: dict) -> Path:
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]
    return Path(dataset_root) / CACHE_FOLDER / f"{_size_name(manifest['size'])}-{digest}"


def _file_bytes(manifest: dict, key: str) -> int:
    return manifest["rows"] * int(np.prod(manifest["shapes"][key]))


def _open(folder: Path, manifest: dict, key: str, mode: str) -> np.memmap:
    shape = (manifest["rows"], *manifest["shapes"][key])
    return np.memmap(folder / f"{key}.u8", dtype=np.uint8, mode=mode, shape=shape)


def _is_complete(folder: Path, manifest: dict) -> bool:
    """A finished build of this manifest: its manifest and every camera's file at full size."""
    try:
        return (json.loads((folder / MANIFEST).read_text()) == manifest and
                all((folder / f"{key}.u8").stat().st_size == _file_bytes(manifest, key) for key in manifest["cameras"]))
    except (OSError, ValueError):
        return False


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
    folder, root, manifest, videos, rows, backend, tolerance_s, size = job
    for key, (video_path, timestamps) in videos.items():
        cache = _open(folder, manifest, key, "r+")
        for start in range(0, len(rows), DECODE_BATCH):
            batch = slice(start, start + DECODE_BATCH)
            frames = decode_video_frames(root / video_path, timestamps[batch], tolerance_s, backend,
                                         return_uint8=True)
            cache[rows[batch]] = _to_cached(frames, size)
        cache.flush()
    return len(rows)


def _episode_jobs(dataset, folder: Path, manifest: dict, size, backend: str) -> list[tuple]:
    """One job an episode: its frames' timestamps as lerobot's reader has them, and their rows in the cache."""
    meta, reader = dataset.meta, dataset._ensure_reader()
    if reader.hf_dataset is None:
        reader.load_and_activate()
    columns = reader.hf_dataset.with_format("numpy", columns=["index", "episode_index", "timestamp"])[:]
    jobs = []
    for episode, first_row in manifest["offsets"].items():
        info = meta.episodes[int(episode)]
        mine = columns["episode_index"] == int(episode)
        rows = first_row + columns["index"][mine] - int(info["dataset_from_index"])
        videos = {key: (meta.get_video_file_path(int(episode), key),
                        [float(info[f"videos/{key}/from_timestamp"]) + float(t) for t in columns["timestamp"][mine]])
                  for key in manifest["cameras"]}
        jobs.append((folder, dataset.root, manifest, videos, rows, backend, dataset.tolerance_s, size))
    return jobs


def _remove_abandoned_builds(parent: Path) -> None:
    """Folders of builds whose process is gone (killed): a rebuild of their cache would not reuse them."""
    for partial in parent.glob("*.partial-*"):
        try:
            os.kill(int(partial.name.rsplit("-", 1)[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except (ValueError, PermissionError):
            pass  # not a pid, or another user's process: alive


def _allocate(partial: Path, manifest: dict, repo_id: str) -> None:
    """Each camera's file at full size now, so a disk without room says so before any decoding."""
    for key in manifest["cameras"]:
        with open(partial / f"{key}.u8", "wb") as file:
            try:
                os.posix_fallocate(file.fileno(), 0, _file_bytes(manifest, key))
            except OSError as error:
                total = sum(_file_bytes(manifest, k) for k in manifest["cameras"])
                raise FrameCacheError(
                    f"the frame cache of {repo_id} at {_size_name(manifest['size'])} needs {_bytes_text(total)} and "
                    f"{partial.parent} has {_bytes_text(shutil.disk_usage(partial.parent).free)} free "
                    f"({error.strerror}): free space, choose a smaller --resize-with-pad, or train without "
                    "--frame-cache") from None


def build_frame_cache(dataset, size: tuple[int, int] | None, workers: int = 0,
                      backend: str | None = None) -> FrameCacheInfo:
    """The cache of `dataset` (a LeRobotDataset) at `size`, found or built with `workers` processes
    (0: one per core, for a dataset large enough to repay starting them)."""
    meta = dataset.meta
    keys = [key for key in meta.video_keys if key not in meta.depth_keys]
    if not keys:
        raise FrameCacheError(f"{dataset.repo_id} stores no camera videos (its images are already decoded "
                              "frames): train without --frame-cache")
    manifest = _manifest(dataset, keys, size)
    folder = cache_path(dataset.root, manifest)
    nbytes = sum(_file_bytes(manifest, key) for key in keys)
    info = FrameCacheInfo(str(folder), manifest["size"], keys, manifest["rows"], round(nbytes / 1e9, 3), None)
    if _is_complete(folder, manifest):
        return info

    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    try:
        shutil.rmtree(folder, ignore_errors=True)  # damaged: a file missing or cut short
        partial.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FrameCacheError(f"cannot write the frame cache into {folder.parent} ({error.strerror}): train "
                              "without --frame-cache, or from a copy of the dataset in a writable folder") from None
    _remove_abandoned_builds(folder.parent)
    started = time.monotonic()
    try:
        _allocate(partial, manifest, dataset.repo_id)
        jobs = _episode_jobs(dataset, partial, manifest, size, backend or dataset._ensure_reader()._video_backend)
        processes = workers or (len(os.sched_getaffinity(0)) if manifest["rows"] >= POOL_MIN_FRAMES else 1)
        processes = min(processes, len(jobs))
        with tqdm(total=manifest["rows"], desc=f"frame cache {folder.name} ({_bytes_text(nbytes)})",
                  unit="frame") as progress:
            if processes <= 1:
                for job in jobs:
                    progress.update(_build_episode(job))
            else:
                # spawn: the parent holds torch's and the decoders' threads, which fork would copy half-alive.
                with multiprocessing.get_context("spawn").Pool(processes) as pool:
                    for frames in pool.imap_unordered(_build_episode, jobs):
                        progress.update(frames)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        try:
            partial.rename(folder)
        except OSError:
            if not _is_complete(folder, manifest):  # else another build of the same cache finished first
                raise
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
        """The episode's (timestamps of its frames as lerobot's reader has them, their rows in the cache)."""
        if episode not in self._episodes:
            info = self.reader._meta.episodes[episode]
            start, end = int(info["dataset_from_index"]), int(info["dataset_to_index"])
            to_relative = self.reader._absolute_to_relative_idx
            rows = [to_relative[index] for index in range(start, end)] if to_relative else list(range(start, end))
            timestamps = np.array([float(t) for t in self.reader.hf_dataset[rows]["timestamp"]])
            first_row = self.manifest["offsets"][str(episode)]
            self._episodes[episode] = timestamps, np.arange(first_row, first_row + end - start)
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


def serve_cached_frames(dataset, size: tuple[int, int] | None, workers: int = 0) -> FrameCacheInfo:
    """Build or find `dataset`'s frame cache and have its reader take camera frames from it."""
    from lerobot.datasets import LeRobotDataset

    if not isinstance(dataset, LeRobotDataset):
        raise FrameCacheError(f"--frame-cache decodes the videos of a dataset on disk; this one is read as a "
                              f"{type(dataset).__name__} (streamed: dataset.streaming=true), which has none: "
                              "drop one of the two")
    info = build_frame_cache(dataset, size, workers)
    reader = dataset._ensure_reader()
    reader._query_videos = CachedVideoQuery(reader, Path(info.path))
    return info
