#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine, and nothing twice:
#   Debian packages (Mesa EGL for offscreen MuJoCo rendering), a Python 3.12 virtual environment
#   at .venv with the pinned requirements, and the project installed into it (pip install -e .).
set -euo pipefail
cd "$(dirname "$0")/.."

# Mesa EGL: offscreen MuJoCo rendering. FFmpeg 5 shared libraries: torchcodec video decoding
# (without them lerobot falls back to pyav, about 1.5x slower).
DEBIAN_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1
  libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

find_python() {
  for candidate in "${SO101_PYTHON:-}" python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python" /usr/bin/python3.12; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  echo "[setup] Python 3.12 is needed (lerobot 0.6.1 and ROS 2 Jazzy use it); set SO101_PYTHON to one." >&2
  exit 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(find_python)
  echo "[setup] creating .venv with $python"
  "$python" -m venv .venv
fi

# Reinstall only when what is installed would change.
stamp=.venv/.so101-setup
wanted=$(cat requirements.txt setup.py setup.cfg package.xml | sha256sum | cut -d' ' -f1)
# The packages take 6.3 GB in .venv (torch's CUDA wheels), and pip unpacks them in TMPDIR first: a
# full disk would otherwise stop pip midway with an OSError.
NEEDED_GB=10
free_gb() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1024 / 1024) }'; }
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  for folder in . "${TMPDIR:-/tmp}"; do
    if [ "$(free_gb "$folder")" -lt "$NEEDED_GB" ]; then
      echo "[setup] only $(free_gb "$folder") GB free on $(realpath "$folder"); installing the Python packages" \
        "needs about $NEEDED_GB GB there. Free some space (or set TMPDIR to a roomier disk) and run again." >&2
      exit 1
    fi
  done
  echo "[setup] installing Python packages into .venv (first time: several minutes; log: .venv/setup.log)"
  {
    .venv/bin/python -m pip install --upgrade pip &&
    .venv/bin/python -m pip install -r requirements.txt &&
    .venv/bin/python -m pip install --no-deps -e .
  } > .venv/setup.log 2>&1 || { tail -40 .venv/setup.log; echo "[setup] pip failed; see .venv/setup.log" >&2; exit 1; }
  echo "$wanted" > "$stamp"
fi
