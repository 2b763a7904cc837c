#!/usr/bin/env bash
# The main command: sets up what is missing, then runs the main job on the built-in simulation.
# Today that is the MuJoCo SO-101 driven through the ROS 2 graph by the scripted expert: resets over
# /so101/reset, action chunks on /so101/action_chunk, outcomes from /so101/episode_status.
# Arguments go to `so101 sim` (default: --expert-episodes 5).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}"
# A domain of its own and localhost-only discovery: the demo never talks to other ROS graphs.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}" ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
if [ $# -eq 0 ]; then
  set -- --expert-episodes 5 --output outputs/sim_expert
fi
exec .venv/bin/so101 sim "$@"
