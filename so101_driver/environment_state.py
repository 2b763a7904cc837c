"""The sim's privileged object state, `observation.environment_state`: one vector, one definition (ROS-free).

Cube position (m), cube orientation (unit quaternion w, x, y, z, with w >= 0: q and -q are the same
turn), and target position (m), all in the world frame, whose origin is under the arm's base. The
sim dataset records it each frame, the sim driver publishes it each tick (a PoseArray: the cube's
pose, then the target's), and the policy node gives it to checkpoints trained on it. Only the sim
knows it: real-arm graphs never carry it.
"""

from __future__ import annotations

import numpy as np

ENVIRONMENT_STATE_KEY = "observation.environment_state"
ENVIRONMENT_STATE_TOPIC = "so101/sim/environment_state"
ENVIRONMENT_STATE_NAMES = ("cube.x", "cube.y", "cube.z", "cube.qw", "cube.qx", "cube.qy", "cube.qz",
                           "target.x", "target.y", "target.z")


def environment_state(cube_position, cube_quaternion, target_position) -> np.ndarray:
    """The vector (float32, ENVIRONMENT_STATE_NAMES) from the cube's pose and the target's position."""
    quaternion = np.asarray(cube_quaternion, dtype=np.float64)
    quaternion = quaternion / np.linalg.norm(quaternion)
    if quaternion[0] < 0:
        quaternion = -quaternion
    return np.concatenate([np.asarray(cube_position, float), quaternion,
                           np.asarray(target_position, float)]).astype(np.float32)


def split_environment_state(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cube position, cube quaternion w-x-y-z, target position) of a vector made by environment_state."""
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (len(ENVIRONMENT_STATE_NAMES),):
        raise ValueError(f"an environment state has {len(ENVIRONMENT_STATE_NAMES)} values "
                         f"{list(ENVIRONMENT_STATE_NAMES)}, got shape {state.shape}")
    return state[0:3], state[3:7], state[7:10]
