"""`so101 replay`'s own options, apart from the replay (torch, the policy) so the command line builds at once."""

from __future__ import annotations

from dataclasses import MISSING, dataclass

from . import bag_format
from .options import option


@dataclass(frozen=True)
class ReplayConfig:
    """`so101 replay`'s own options; the rest (checkpoint, cameras, calibration, rate, output_dir, ...) are the
    GraphArgs fields replay.launch.py declares (graph.REPLAY_ARGUMENTS), under the same names."""

    bags: list[str] = option(MISSING, "bag directories recorded by so101 eval --record or so101 record", nargs="+")
    fps: float = option(30.0, "frames per second of the replay")
    stride: int | None = option(None, "frames between predictions (default: the checkpoint's n_action_steps)",
                                type=int)
    seed: int = option(0, "torch seed at the start of each episode")
    realtime: bool = option(False, "play each bag into the ROS graph at its recorded timing instead (bag_player and "
                                   "policy_node, as replay.launch.py), comparing the chunks policy_node publishes")

    def __post_init__(self):
        if self.fps <= 0 or (self.stride is not None and self.stride < 1):
            raise ValueError(f"fps must be above 0 and stride at least 1, got fps {self.fps:g}, stride {self.stride}")
        bag_format.check_bag_directories(self.bags)
