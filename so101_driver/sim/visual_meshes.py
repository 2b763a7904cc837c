"""Decimated copies of the SO-101 meshes for rendering, cached on disk.

The CAD meshes (about 320k triangles) make an offscreen CPU frame take 80+ ms; a 224x224 camera
cannot tell a 2 mm detail, so visual geoms get meshes decimated by vertex clustering on a 2 mm grid
(about 23k triangles in all). Quadric simplifiers (fast-simplification, pyfqmr) stall near 25% of
these CAD meshes; clustering reaches any size in milliseconds. Collision geoms keep the exact meshes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

CACHE_ENV = "SO101_CACHE_DIR"


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "so101"
    )
    return Path(root) / "visual_meshes"


def read_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (welded) and triangle indices of a binary STL file."""
    data = path.read_bytes()
    count = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    if len(data) != 84 + count * record.itemsize:
        raise ValueError(f"{path} is not a binary STL file ({len(data)} bytes for {count} triangles).")
    corners = np.frombuffer(data, dtype=record, count=count, offset=84)["corners"].reshape(-1, 3)
    vertices, faces = np.unique(corners, axis=0, return_inverse=True)
    return vertices.astype(np.float64), faces.reshape(-1, 3).astype(np.int32)


def cluster_vertices(vertices: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge the vertices in each `cell`-sized cube into their mean; drop collapsed triangles."""
    cells = np.floor(vertices / cell).astype(np.int64)
    _, cluster = np.unique(cells, axis=0, return_inverse=True)
    cluster = cluster.ravel()
    counts = np.bincount(cluster)
    merged = np.zeros((len(counts), 3))
    np.add.at(merged, cluster, vertices)
    merged /= counts[:, None]
    new_faces = cluster[faces]
    distinct = (
        (new_faces[:, 0] != new_faces[:, 1])
        & (new_faces[:, 1] != new_faces[:, 2])
        & (new_faces[:, 0] != new_faces[:, 2])
    )
    new_faces = new_faces[distinct]
    _, first = np.unique(np.sort(new_faces, axis=1), axis=0, return_index=True)
    return merged, new_faces[np.sort(first)].astype(np.int32)


def decimated_mesh(path: Path, cell: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """The mesh at `path` clustered on a `cell`-metre grid, from the disk cache when it is there."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"{path.stem}-{digest}-{cell * 1000:.2f}mm.npz"
    if cached.is_file():
        with np.load(cached) as stored:
            return stored["vertices"], stored["faces"]
    vertices, faces = cluster_vertices(*read_stl(path), cell)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(partial, vertices=vertices, faces=faces)
    partial.replace(cached)  # atomic: parallel test workers never read half a file
    return vertices, faces
