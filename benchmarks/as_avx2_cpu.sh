#!/usr/bin/env bash
# Runs a command on this CPU as an AVX2-only one would run it (no AVX-512, no AMX): the demo and the CPU
# presets choose their numeric path from /proc/cpuinfo's flags, and torch computes with what ATen, oneDNN
# and MKL dispatch to. Clock and memory speed stay this machine's.
#
#   sudo benchmarks/as_avx2_cpu.sh ./scripts/demo.sh --output outputs/demo_avx2
#
# Needs root: /proc/cpuinfo, without the AVX-512 and AMX flags, is bind-mounted in a mount namespace of
# the command's own, so nothing outside it sees the change.
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGUMENT...]" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "$0: needs root, to mount a /proc/cpuinfo without the AVX-512 and AMX flags in a namespace of its own" >&2
  exit 2
fi
cpuinfo=$(mktemp)
sed -E '/^flags/ s/ (avx512[a-z0-9_]*|amx[a-z0-9_]*)//g' /proc/cpuinfo > "$cpuinfo"
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
exec unshare --mount sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$cpuinfo" "$@"
