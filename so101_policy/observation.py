"""The latest camera frames and joint state, checked for age and mutual sync (ROS-free).

No observation means no inference: a frame or joint state older than `max_age`, or frames and
joints taken too far apart, give a `StaleObservation` that says which, never a chunk from old data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from so101_driver.environment_state import ENVIRONMENT_STATE_KEY
from so101_driver.joint_model import JointModel

STATE_KEY = "observation.state"
ENVIRONMENT_STATE = "environment_state"  # its name among an observation's parts
IMAGE_PREFIX = "observation.images."


@dataclass(frozen=True)
class Observation:
    stamp: float  # the joint state's stamp: the chunk's time zero
    values: dict[str, np.ndarray]  # LeRobot keys: state in LeRobot units, images (H, W, 3) uint8 RGB


@dataclass(frozen=True)
class StaleObservation:
    reason: str
    cause: str = ""  # what is wrong, without the numbers: the same while the same inputs stay stale
    waiting: bool = False  # an input has sent nothing yet (start-up, a new episode): nothing is wrong yet

    def __post_init__(self):
        if not self.cause:
            object.__setattr__(self, "cause", self.reason)


@dataclass
class ObservationAssembler:
    camera_keys: tuple[str, ...]  # dataset camera names: "wrist" for observation.images.wrist
    joint_model: JointModel
    max_age: float = 0.2
    max_skew: float = 0.1  # largest gap between the stamps of the parts of one observation
    environment_state: bool = False  # the checkpoint takes the sim's object state (observation.environment_state)
    _frames: dict[str, tuple[float, np.ndarray]] = field(default_factory=dict)
    _joints: tuple[float, np.ndarray] | None = None
    _objects: tuple[float, np.ndarray] | None = None

    def update_image(self, camera: str, stamp: float, rgb: np.ndarray) -> None:
        self._frames[camera] = (stamp, rgb)

    def update_joints(self, stamp: float, radians: np.ndarray) -> None:
        self._joints = (stamp, np.asarray(radians, dtype=np.float64))

    def update_environment_state(self, stamp: float, state: np.ndarray) -> None:
        self._objects = (stamp, np.asarray(state, dtype=np.float32))

    def clear(self) -> None:
        self._frames.clear()
        self._joints = None
        self._objects = None

    def assemble(self, now: float) -> Observation | StaleObservation:
        if self._joints is None:
            return StaleObservation("no joint state received yet", waiting=True)
        missing = [c for c in self.camera_keys if c not in self._frames]
        if missing:
            return StaleObservation(f"no image received yet from {missing}", waiting=True)
        if self.environment_state and self._objects is None:
            return StaleObservation("no environment state received yet (the checkpoint takes the sim's object state, "
                                    "which only the sim driver publishes)", waiting=True)
        stamps = {"joint_states": self._joints[0], **{c: self._frames[c][0] for c in self.camera_keys}}
        if self.environment_state:
            stamps[ENVIRONMENT_STATE] = self._objects[0]
        old = {name: now - stamp for name, stamp in stamps.items() if now - stamp > self.max_age}
        if old:
            ages = ", ".join(f"{name} {age:.2f} s" for name, age in old.items())
            return StaleObservation(f"stale data (max_obs_age {self.max_age:.2f} s): {ages}",
                                    cause=f"stale: {', '.join(old)}")
        skew = max(stamps.values()) - min(stamps.values())
        if skew > self.max_skew:
            return StaleObservation(f"cameras and joints {skew:.3f} s apart (at most {self.max_skew:.3f} s)",
                                    cause="skew")
        values = {STATE_KEY: self.joint_model.to_lerobot(self._joints[1]).astype(np.float32)}
        for camera in self.camera_keys:
            values[IMAGE_PREFIX + camera] = self._frames[camera][1]
        if self.environment_state:
            values[ENVIRONMENT_STATE_KEY] = self._objects[1]
        return Observation(stamp=self._joints[0], values=values)
