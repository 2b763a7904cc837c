import os
import signal
import sys
from pathlib import Path

# Test helpers (the Feetech emulator, shared fixtures) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("MUJOCO_GL", "egl")
# A suite started in the background by a shell without job control (`cmd &` in a script, nohup) inherits SIGINT
# ignored, and so does every process it starts: the Ctrl-C tests then fail (seen: 6 failures of a CI run launched
# that way). Ctrl-C as a terminal delivers it, for this process and its children.
signal.signal(signal.SIGINT, signal.default_int_handler)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_eval(tmp_path_factory):
    """`so101 eval` of a tiny ACT, idle: (output directory, stdout, checkpoint)."""
    from sim_eval import so101_eval
    from tiny_policies import tiny_act_checkpoint

    root = tmp_path_factory.mktemp("eval")
    checkpoint = tiny_act_checkpoint(root / "act", image_shape=(3, 64, 64), chunk_size=20)
    result = so101_eval(checkpoint, root / "run")
    return root / "run", result.stdout, checkpoint
