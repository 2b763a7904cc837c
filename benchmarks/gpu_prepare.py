"""What benchmarks/gpu.sh needs on the GPU machine and that machine lacks, made here, before a GPU session.

The GPU machine reaches no package index and has no lerobot and no ROS; its image holds CUDA torch
and the distributions in gpu_device_packages.txt. This writes, in the repository's root:
- `.whl/`: wheels of every distribution the benchmarks need that the image lacks, in this .venv's
  versions (lerobot[training,smolvla] and its needs, closed over their requirements);
- `.devdata/sim480`: the 640x480 AV1 sim dataset the training benchmarks read;
and then checks them the way the GPU machine will use them: in a venv that sees only the image's
distributions (taken from this .venv) and the wheels, it imports every module the benchmarks use and,
with --smoke, runs gpu.sh's benchmarks tiny on the CPU. A wheel missing, or code that needs what
that machine lacks, shows here rather than in device minutes. Run it with the .venv's Python:

    .venv/bin/python benchmarks/gpu_prepare.py --smoke
    # then, with a GPU lent: carry [".whl", ".devdata"] and run benchmarks/gpu.sh (its header says how)
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
ROOTS = {"lerobot": ("training", "smolvla")}  # with the extras the benchmarks use
# Every module the GPU benchmarks import, at the top or in the functions they call.
MODULES = [
    "lerobot.policies.act.modeling_act", "lerobot.policies.smolvla.modeling_smolvla",
    "lerobot.datasets.lerobot_dataset", "lerobot.scripts.lerobot_train", "av",
    "so101_policy.predictor", "so101_policy.inference_backends", "so101_policy.cuda_graph",
    "so101_policy.torch_compile", "training.train", "training.frame_cache", "training.delta_query_cache",
    "benchmarks.bench_inference", "benchmarks.bench_backends", "benchmarks.bench_train", "benchmarks.bench_data",
]
LEFT_BEHIND = {  # needed by lerobot's metadata, not by the benchmarks: not carried
    # it cannot load without FFmpeg's shared libraries, which that machine lacks; lerobot then uses pyav
    "torchcodec": "needs FFmpeg's shared libraries",
    "wandb": "logging to Weights & Biases, off in every run (20 MB)",
}
CARRY_LIMIT_MIB = 60  # of the 64 a device call takes, the working tree's few MiB left out
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]


def device_packages(path: Path) -> set[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return {canonicalize_name(line) for line in lines if line and not line.startswith("#")}


def needed_distributions(on_device: set[str]) -> dict[str, str]:
    """{name: version} of this .venv's distributions the roots need, closed over requirements, less the device's."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    needed: dict[str, str] = {}
    todo = [(name, extras) for name, extras in ROOTS.items()]
    seen: set[tuple[str, str]] = set()
    while todo:
        name, extras = todo.pop()
        name = canonicalize_name(name)
        for extra in ("", *extras):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            if name in LEFT_BEHIND:
                continue
            if name not in installed:
                raise SystemExit(f"{name} is needed on the GPU machine but not installed here: run scripts/setup.sh.")
            distribution = installed[name]
            if name not in on_device:
                needed[name] = distribution.version
            for line in distribution.requires or []:
                requirement = Requirement(line)
                if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                    todo.append((requirement.name, tuple(requirement.extras)))
    return needed


def download_wheels(needed: dict[str, str], folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.whl"):
        old.unlink()
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    for name, version in sorted(needed.items()):
        pinned = f"{name}=={version}"
        downloaded = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                     "--python-version", "3.12", "--implementation", "cp", *platforms,
                                     "-d", str(folder), pinned], capture_output=True, text=True)
        if downloaded.returncode != 0:  # only a source distribution (docopt): built here, as pip would there
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), pinned],
                           check=True)


def record_dataset(folder: Path, episodes: int) -> None:
    if (folder / "meta" / "info.json").exists():
        print(f"{folder} is there; delete it to record it again")
        return
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    subprocess.run([str(Path(sys.executable).parent / "so101"), "dataset", "sim", "--root", str(folder),
                    "--repo-id", "local/so101_sim_480", "--episodes", str(episodes), "--width", "640",
                    "--height", "480"], check=True, env=env)


@contextmanager
def device_like_python(on_device: set[str], wheels: Path) -> Iterator[Path]:
    """A Python (a venv, for the benchmarks' own subprocesses too) that sees what the GPU machine's will:
    the image's distributions, taken from this .venv, and the wheels."""
    with tempfile.TemporaryDirectory(prefix="so101_gpu_emulation_") as scratch:
        device_site, wheel_site, environment = (Path(scratch, name) for name in ("device", "wheels", "venv"))
        device_site.mkdir()
        for distribution in metadata.distributions():
            if canonicalize_name(distribution.metadata["Name"]) not in on_device:
                continue
            for top in {Path(str(file)).parts[0] for file in distribution.files or []} - {".."}:
                source = Path(distribution.locate_file(top))
                if source.exists() and not (device_site / top).exists():
                    (device_site / top).symlink_to(source)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(wheel_site), *map(str, sorted(wheels.glob("*.whl")))], check=True)
        venv.create(environment, symlinks=True)
        python = environment / "bin" / "python"
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              capture_output=True, text=True, check=True).stdout.strip()
        Path(site, "so101_gpu_emulation.pth").write_text(f"{wheel_site}\n{device_site}\n")
        yield python


def run_as_the_device_would(python: Path, command: list[str], what: str) -> None:
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "PYTHONPATH": str(ROOT),
                   "PYTHONUNBUFFERED": "1", "TMPDIR": tempfile.gettempdir()}
    result = subprocess.run([str(python), *command], cwd=ROOT, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"{what} fails as the GPU machine would run it:\n{result.stdout[-2000:]}\n"
                         f"{result.stderr[-3000:]}")
    print(f"{what}: ok")


def smoke_run(python: Path, dataset: Path, scratch: Path) -> None:
    """gpu.sh's benchmarks, tiny and on the CPU, in the device's packages: the code paths, not the numbers.
    They read a copy of the dataset: the frame cache they build must not travel (300 MiB)."""
    dataset = Path(shutil.copytree(dataset, scratch / "dataset"))
    run_as_the_device_would(python, ["benchmarks/bench_backends.py", "--device", "cpu", "--policy", "act",
                                     "--backends", "torch", "--chunks", "2", "--rounds", "1", "--workdir",
                                     str(scratch / "work"), "--output", str(scratch / "backends.json")],
                            "bench_backends (full ACT, 2 chunks)")
    run_as_the_device_would(python, ["benchmarks/bench_data.py", "--dataset-root", str(dataset), "--workers", "0",
                                     "--batch-size", "2", "--batches", "1", "--output", str(scratch / "data.json")],
                            "bench_data (every lever there, 1 batch)")
    run_as_the_device_would(python, ["benchmarks/bench_train.py", "--dataset-root", str(dataset), "--device", "cpu",
                                     "--policies", "act", "--batch-size", "2", "--steps", "2", "--warmup", "0",
                                     "--workers", "0", "--frame-cache", "--workdir", str(scratch / "work"),
                                     "--output", str(scratch / "train.json")],
                            "bench_train (full ACT, 2 steps, frame cache)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device-packages", type=Path, default=Path(__file__).with_name("gpu_device_packages.txt"))
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    parser.add_argument("--dataset", type=Path, default=ROOT / ".devdata" / "sim480")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--check-only", action="store_true", help="only the checks, with the wheels there")
    parser.add_argument("--smoke", action="store_true", help="also run gpu.sh's benchmarks tiny on the CPU there "
                        "(a few minutes)")
    args = parser.parse_args()
    on_device = device_packages(args.device_packages)
    if not args.check_only:
        needed = needed_distributions(on_device)
        print("wheels:", ", ".join(f"{name}=={version}" for name, version in sorted(needed.items())))
        download_wheels(needed, args.wheels)
        record_dataset(args.dataset, args.episodes)
    with device_like_python(on_device, args.wheels) as python:
        imports = f"import importlib\nfor name in {MODULES!r}: importlib.import_module(name)"
        run_as_the_device_would(python, ["-c", imports], "importing every module the benchmarks use")
        if args.smoke:
            with tempfile.TemporaryDirectory(prefix="so101_gpu_smoke_") as scratch:
                smoke_run(python, args.dataset, Path(scratch))
    folders = (args.wheels, args.dataset.parent)  # what a device call carries, whole
    carried = sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file()) / 2**20
    print(f"carry {' and '.join(folder.name for folder in folders)}: {carried:.1f} MiB")
    if carried > CARRY_LIMIT_MIB:
        raise SystemExit(f"that is over {CARRY_LIMIT_MIB} MiB: a device call carries 64 MiB with the working tree")


if __name__ == "__main__":
    main()
