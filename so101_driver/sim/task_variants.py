"""Named randomisations of the sim's pick-and-place task (ROS-free, MuJoCo-free).

A variant says where cubes and targets may appear at a reset. Its name goes with everything made on
the sim (a dataset's meta/so101_sim.json, an evaluation's results), so a policy is evaluated on the
layout it was trained on unless a user asks otherwise.

- `pick_place_10cm` (the default): a constrained workspace shaped like the reference dataset's
  (gtgando/so101_pick_place_10cm_v3, "this constrained workspace"): the cube within 2 cm of a start
  mark 21 cm in front of the base, its yaw within +-15 degrees, the target 10 cm to its left within
  +-9 degrees of direction.
- `wide`: the cube anywhere over about 150 cm2, yaw within +-45 degrees, the target 10 cm away in
  any direction that stays in reach.

The overhead camera has two views of a variant: `cell`, the whole work cell (the default, one pose for
every variant), and `workspace`, framed on where the variant puts cubes and targets: at the same image size,
about twice the pixels on each centimetre of table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

TARGET_DISTANCE = 0.10  # m from the cube's start to the target's centre: the task's "10 cm"
# Where `so101 dataset sim` keeps its settings, the variant among them, in the dataset's folder.
SIM_DATASET_SETTINGS = Path("meta") / "so101_sim.json"
# Sim datasets recorded before variants were named laid out their scenes as `wide` does.
VARIANT_BEFORE_NAMES = "wide"
# The overhead camera's views; datasets recorded before views were named saw the cell.
OVERHEAD_VIEWS = ("cell", "workspace")
DEFAULT_OVERHEAD_VIEW = "cell"
# The cell view: the point the camera looks at (m, world) and its vertical field of view (degrees).
CELL_VIEW = ((0.21, 0.02, 0.0), 55.0)


@dataclass(frozen=True)
class TaskVariant:
    """Ranges sampled uniformly at each reset; positions are polar around the arm's base (m, rad)."""

    name: str
    description: str
    cube_radius: tuple[float, float]
    cube_bearing: tuple[float, float]
    cube_yaw: tuple[float, float]
    target_direction: tuple[float, float]  # of the cube-to-target line, from the world x axis
    target_radius: tuple[float, float] = (0.14, 0.29)  # where a target may land (reach)
    target_bearing: tuple[float, float] = (-0.75, 0.75)
    # The overhead camera framed on this variant's cubes and targets, from the cell view's position:
    # (look-at point, vertical field of view in degrees).
    workspace_view: tuple[tuple[float, float, float], float] = CELL_VIEW

    def sample(self, rng) -> tuple[tuple[float, float], float, tuple[float, float]]:
        """Cube (x, y), cube yaw and target (x, y) from a numpy Generator; the layout is drawn again until the
        target lies in reach. (No numpy import here: the `so101` command line reads the variants' names.)"""
        while True:
            radius, bearing = rng.uniform(*self.cube_radius), rng.uniform(*self.cube_bearing)
            cube = (radius * math.cos(bearing), radius * math.sin(bearing))
            direction = rng.uniform(*self.target_direction)
            target = (cube[0] + TARGET_DISTANCE * math.cos(direction), cube[1] + TARGET_DISTANCE * math.sin(direction))
            target_radius = math.hypot(*target)
            target_bearing = math.atan2(target[1], target[0])
            if self.target_radius[0] <= target_radius <= self.target_radius[1] and \
                    self.target_bearing[0] <= target_bearing <= self.target_bearing[1]:
                return cube, float(rng.uniform(*self.cube_yaw)), target


VARIANTS = {
    variant.name: variant
    for variant in (
        TaskVariant(
            name="pick_place_10cm",
            description="cube within 2 cm of a mark 21 cm in front of the base (radius 0.19-0.23 m, bearing "
                        "+-0.1 rad), yaw +-15 deg, target 10 cm to its left (+-9 deg)",
            cube_radius=(0.19, 0.23),
            cube_bearing=(-0.1, 0.1),
            cube_yaw=(-math.radians(15.0), math.radians(15.0)),
            target_direction=(math.pi / 2 - 0.15, math.pi / 2 + 0.15),
            # Every cube start and target in frame with a margin, the cube about 5 px wide at 64x64.
            workspace_view=((0.215, 0.04, 0.0), 28.0),
        ),
        TaskVariant(
            name="wide",
            description="cube over radius 0.17-0.25 m and bearing +-0.45 rad, yaw +-45 deg, target 10 cm away in "
                        "any direction that stays in reach",
            cube_radius=(0.17, 0.25),
            cube_bearing=(-0.45, 0.45),
            cube_yaw=(-math.pi / 4, math.pi / 4),
            target_direction=(-math.pi, math.pi),
            # Its cubes and targets fill the cell view already.
        ),
    )
}
DEFAULT_VARIANT = "pick_place_10cm"


def task_variant(name: str) -> TaskVariant:
    """The variant of that name; an unknown one is refused with the names there are."""
    if name not in VARIANTS:
        raise ValueError(f"task_variant must be one of {sorted(VARIANTS)}, got '{name}'")
    return VARIANTS[name]


def overhead_view(name: str, variant: TaskVariant) -> tuple[tuple[float, float, float], float]:
    """The overhead camera's (look-at point, vertical field of view in degrees) for a view of the variant."""
    if name not in OVERHEAD_VIEWS:
        raise ValueError(f"overhead_view must be one of {list(OVERHEAD_VIEWS)}, got '{name}'")
    return CELL_VIEW if name == "cell" else variant.workspace_view


def dataset_sim_settings(root: Path) -> dict[str, str] | None:
    """The task variant and overhead view a dataset at `root` was recorded with (those of datasets recorded
    before either was named filled in); None for data not recorded by `so101 dataset sim`."""
    path = Path(root) / SIM_DATASET_SETTINGS
    if not path.is_file():
        return None
    settings = json.loads(path.read_text()).get("settings", {})
    return {"task_variant": settings.get("task_variant", VARIANT_BEFORE_NAMES),
            "overhead_view": settings.get("overhead_view", DEFAULT_OVERHEAD_VIEW)}

