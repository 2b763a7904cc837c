"""Which numeric path a CPU training run takes: bfloat16 autocast only where the CPU computes bf16 itself.

lerobot's `use_amp` on a CPU is bfloat16 autocast. A CPU with AVX512_BF16 or AMX multiplies bf16
natively, and a small ACT's update ran 1.15-1.35x faster with it; without them PyTorch emulates
bf16, and the same update took 12.4 s instead of 0.98 s on an AVX2-only AMD EPYC. So presets say
`policy.use_amp=auto`, and the run takes bf16 only where these flags are there. Linux tells the
flags in /proc/cpuinfo; where it cannot be read, the exact fp32 path is taken.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class NumericPath:
    """What a CPU offers: its model name, and whether it computes bf16 natively (and why we say so)."""

    cpu: str
    bf16: bool
    reason: str


def read_cpuinfo(path: Path = CPUINFO) -> tuple[str, set[str]]:
    """The CPU's model name and flags, as Linux lists them (where it cannot be read: what Python says of the
    processor, and no flags)."""
    try:
        text = path.read_text()
    except OSError:
        return platform.processor() or "an unknown CPU", set()
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model or "an unknown CPU", flags


def cpu_numeric_path(model: str | None = None, flags: set[str] | None = None) -> NumericPath:
    """The path for this CPU (or for the model and flags given)."""
    if model is None or flags is None:
        read_model, read_flags = read_cpuinfo()
        model = read_model if model is None else model
        flags = read_flags if flags is None else flags
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if native:
        return NumericPath(model, True, f"it computes bf16 natively: {', '.join(native)}")
    widest = next((flag for flag in ("avx512f", "avx2") if flag in flags), "no AVX2")
    return NumericPath(model, False, f"no native bf16 ({widest}; neither of {', '.join(NATIVE_BF16_FLAGS)}): "
                                     "autocast would emulate it, many times slower")


def resolve_use_amp(value: str, device: str, path: NumericPath | None) -> str:
    """lerobot's policy.use_amp for `auto`: mixed precision on a GPU, and on a CPU (`path`) only where bf16 is
    native."""
    value = value.strip().lower()  # draccus reads True and true alike
    if value != AUTO:
        return value
    if device in ("cuda", "mps"):
        return "true"
    return "true" if path is not None and path.bf16 else "false"


def describe_numeric_path(requested: str, resolved: str, path: NumericPath) -> str:
    """The run's path for its log and run_info.json: what it trains in, on which CPU, and who chose it."""
    chosen = path.reason if requested.strip().lower() == AUTO else f"policy.use_amp={requested} as set"
    return f"{'bfloat16 autocast' if resolved == 'true' else 'float32'} on {path.cpu} ({chosen})"
