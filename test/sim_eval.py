"""`so101 eval` in the sim with a tiny ACT, as users run it: shared by the evaluation and sim-time tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ros_harness import isolated_ros_env, next_domain_id

SO101 = str(Path(sys.executable).parent / "so101")


def so101_eval(checkpoint: Path, output: Path, hog: int = 0) -> subprocess.CompletedProcess:
    """Two recorded 2 s episodes (seeds 7 and 3) in lockstep, with `hog` busy processes competing for the CPU."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hog)]
    try:
        result = subprocess.run([SO101, "eval", "--policy", "act", "--checkpoint", str(checkpoint), "--episodes", "2",
                                 "--max-episode-s", "2", "--seed", "7,3", "--record", "--sim-width", "64",
                                 "--sim-height", "64", "--device", "cpu", "--output-dir", str(output)],
                                capture_output=True, text=True, timeout=600, env=isolated_ros_env(next_domain_id()))
    finally:
        for process in hogs:
            process.kill()
            process.wait()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
