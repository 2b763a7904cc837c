"""The action chunk of a training sample read from memory, not through the Hugging Face dataset.

For every sample lerobot's dataset reader gathers the delta-timestamp window of each numeric key
(ACT: 30 or 50 future actions) with `hf_dataset[key][indices]`, which formats each row through the
torch transform: about 19 ms a sample here, a third of a small ACT's training step on a 2-core CPU.
Those columns are a few megabytes, so `so101 train` reads them once into tensors and answers the
same queries by indexing; images and videos still come through lerobot's own path. The result
is the same tensors (the tests compare the two paths on every frame of a dataset).
"""

from __future__ import annotations

import numpy as np
import torch


class CachedDeltaQuery:
    """Stands in for a DatasetReader's _query_hf_dataset: numeric delta keys from memory, the rest as before."""

    def __init__(self, reader, columns: dict[str, torch.Tensor]):
        self.reader = reader
        self.columns = columns
        self.original = reader._query_hf_dataset

    def __call__(self, query_indices: dict[str, list[int]]) -> dict:
        rest = {key: indices for key, indices in query_indices.items() if key not in self.columns}
        result = self.original(rest) if rest else {}
        to_relative = self.reader._absolute_to_relative_idx
        for key, indices in query_indices.items():
            if key in self.columns:
                relative = indices if to_relative is None else [to_relative[index] for index in indices]
                result[key] = self.columns[key][relative]
        return result


def cache_delta_columns(dataset) -> list[str]:
    """Serve `dataset`'s numeric delta-timestamp keys from memory; returns the keys cached."""
    from lerobot.datasets import LeRobotDataset

    if not isinstance(dataset, LeRobotDataset):
        return []
    reader = dataset._ensure_reader()
    if reader.hf_dataset is None:
        reader.load_and_activate()
    visual = set(dataset.meta.video_keys) | set(dataset.meta.camera_keys)
    keys = [key for key in (reader.delta_indices or {}) if key not in visual]
    if not keys:
        return []
    rows = reader.hf_dataset.with_format("numpy", columns=keys)[:]  # in the reader's own row order
    columns = {key: torch.from_numpy(np.ascontiguousarray(np.stack(rows[key]))) for key in keys}
    reader._query_hf_dataset = CachedDeltaQuery(reader, columns)
    return keys
