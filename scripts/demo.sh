#!/usr/bin/env bash
# The main command: sets up what is missing, then runs the main job on the built-in simulation:
# scripted demonstrations in MuJoCo, a small ACT trained for a bounded time on the CPU, evaluated
# through the full ROS 2 graph (sim driver, policy_node, eval_manager, recorder), a results table,
# bags and plots. Arguments go to `so101 demo` (e.g. --checkpoint PATH to evaluate a trained one).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}"
# A domain of its own and localhost-only discovery: the demo never talks to other ROS graphs.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}" ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
exec .venv/bin/so101 demo "$@"
