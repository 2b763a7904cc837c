#!/usr/bin/env bash
# Runs a command on this CPU as an AVX2-only one would run it (no AVX-512, no AMX), for training and the
# demo: the CPU presets and the demo choose their numeric path from /proc/cpuinfo's flags, and torch
# computes with what ATen, oneDNN and MKL dispatch to. Clock and memory speed stay this machine's, and
# what asks the CPU itself (CPUID: numpy, MuJoCo, onnxruntime, OpenVINO, the torch_bf16 backend's check)
# still sees AVX-512: the figures are torch's.
#
#   sudo benchmarks/as_avx2_cpu.sh ./scripts/demo.sh --output outputs/demo_avx2
#
# Needs root with CAP_SYS_ADMIN: /proc/cpuinfo, without the AVX-512 and AMX flags, is bind-mounted in a
# mount namespace of the command's own, so nothing outside it sees the change. Under sudo the command
# runs as the user who called it.
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGUMENT...]" >&2
  exit 2
fi
if ! unshare --mount true 2>/dev/null; then
  echo "$0: cannot make a mount namespace (needs root with CAP_SYS_ADMIN: sudo, or a --privileged container)" >&2
  exit 2
fi
cpuinfo=$(mktemp)
trap 'rm -f "$cpuinfo"' EXIT
sed -E '/^flags/ s/ (avx512[a-z0-9_]*|amx[a-z0-9_]*)//g' /proc/cpuinfo > "$cpuinfo"
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
as_caller=()
if [ -n "${SUDO_UID:-}" ]; then
  as_caller=(setpriv --reuid="$SUDO_UID" --regid="$SUDO_GID" --init-groups)
fi
# The mount keeps the file it shows: the name can go at once.
unshare --mount sh -c 'mount --bind "$0" /proc/cpuinfo && rm -f "$0" && exec "$@"' "$cpuinfo" \
  ${as_caller[@]+"${as_caller[@]}"} "$@"
