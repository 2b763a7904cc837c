import os
import sys
from pathlib import Path

# Test helpers (the Feetech emulator, shared fixtures) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("MUJOCO_GL", "egl")
