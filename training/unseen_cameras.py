"""Camera frames the policy does not see are not read during training.

lerobot's dataset reader returns every feature of a frame: it decodes each camera's video at each
sample and formats each stored image (PNG) through the Hugging Face dataset, whether or not the
policy takes that camera. A wrist-only policy would still pay for the overhead camera, and a policy
trained on the sim's object state alone for both, which is most of its step on a CPU. So, for the
length of a run, the reader's stored image columns of unseen cameras are dropped and its video
query asks only for the seen ones. Every other feature stays in the samples, those the policy does not
take included (the auxiliary object-state target reads observation.environment_state from them).
"""

from __future__ import annotations

from so101_policy.resize_with_pad import IMAGE_PREFIX


class SeenVideoQuery:
    """Stands in for a DatasetReader's _query_videos: decodes only the cameras the policy sees."""

    def __init__(self, original, unseen: set[str]):
        self.original = original
        self.unseen = unseen

    def __call__(self, query_timestamps: dict[str, list[float]], ep_idx: int) -> dict:
        seen = {key: value for key, value in query_timestamps.items() if key not in self.unseen}
        return self.original(seen, ep_idx) if seen else {}


def skip_unseen_cameras(dataset, cameras: tuple[str, ...]) -> list[str]:
    """Stop `dataset` reading the cameras not in `cameras`; returns the feature keys no longer read.

    Left as it is when lerobot's image transforms are on: they are applied to every camera key.
    """
    from lerobot.datasets import LeRobotDataset

    if not isinstance(dataset, LeRobotDataset):
        return []
    reader = dataset._ensure_reader()
    if reader._image_transforms is not None:
        return []
    if reader.hf_dataset is None:
        reader.load_and_activate()
    seen = {IMAGE_PREFIX + camera for camera in cameras}
    unseen = [key for key in dataset.meta.camera_keys if key not in seen]
    stored = [key for key in unseen if key in reader.hf_dataset.column_names]
    if stored:
        reader.hf_dataset = reader.hf_dataset.remove_columns(stored)
    videos = {key for key in unseen if key in dataset.meta.video_keys}
    if videos:
        reader._query_videos = SeenVideoQuery(reader._query_videos, videos)
    return unseen
