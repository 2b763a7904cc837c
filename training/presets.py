"""Training presets that reproduce the reference runs, as lerobot-train settings.

A preset is a set of `lerobot-train` keys (`policy.optimizer_lr`, `batch_size`, ...) plus the two
things lerobot's command line cannot say: which cameras the policy sees and whether images are
resized with padding by a processor step saved in the checkpoint. Users override any key with
lerobot's own syntax (`--steps=5000`, `--policy.optimizer_lr=3e-5`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cpu_numerics import AUTO, NumericPath, cpu_numeric_path, describe_numeric_path, resolve_use_amp

DEFAULT_DATASET = "gtgando/so101_pick_place_10cm_v3"
CAMERAS = ("wrist", "overhead")

# Settings every preset shares: local runs, no hub pushes, no wandb unless asked for.
COMMON = {
    "policy.push_to_hub": "false",
    "wandb.enable": "false",
    "log_freq": "100",
    "seed": "1000",
}


@dataclass(frozen=True)
class TrainPreset:
    name: str
    description: str
    policy_type: str
    settings: dict[str, str]
    excluded_cameras: tuple[str, ...] = ()
    resize_with_pad: tuple[int, int] | None = None  # (height, width)
    # The policy takes the sim's privileged object state (observation.environment_state); no other preset
    # sees it, even where the dataset has it.
    environment_state: bool = False
    reference: dict[str, str] = field(default_factory=dict)  # the reference run it reproduces


PRESETS = {
    preset.name: preset
    for preset in (
        TrainPreset(
            name="act_dual",
            description="ACT, wrist + overhead, ResNet18 (ImageNet), chunk 50, 224x224 with padding, "
                        "AdamW lr 1e-5, batch 64, 20k steps",
            policy_type="act",
            settings={
                "policy.type": "act",
                "policy.vision_backbone": "resnet18",
                "policy.pretrained_backbone_weights": "ResNet18_Weights.IMAGENET1K_V1",
                "policy.chunk_size": "50",
                "policy.n_action_steps": "50",
                # ACT's own optimizer preset: AdamW, no scheduler.
                "policy.optimizer_lr": "1e-5",
                "policy.optimizer_lr_backbone": "1e-5",
                "policy.optimizer_weight_decay": "1e-4",
                "batch_size": "64",
                "steps": "20000",
                "save_freq": "1000",
            },
            resize_with_pad=(224, 224),
            reference={"final_loss": "0.052", "s_per_step": "1.2", "params": "52M"},
        ),
        TrainPreset(
            name="smolvla_dual",
            description="SmolVLA from lerobot/smolvla_base, wrist + overhead, AdamW lr 1e-4, cosine decay "
                        "(1k warmup over 30k), batch 64, 20k steps",
            policy_type="smolvla",
            settings={
                "policy.path": "lerobot/smolvla_base",
                "policy.optimizer_lr": "1e-4",
                "policy.optimizer_weight_decay": "1e-10",
                "policy.scheduler_warmup_steps": "1000",
                "policy.scheduler_decay_steps": "30000",
                "batch_size": "64",
                "steps": "20000",
                "save_freq": "5000",
            },
            reference={"final_loss": "0.005", "s_per_step": "1.7", "params": "450M"},
        ),
    )
}
PRESETS["act_small_cpu"] = TrainPreset(
    name="act_small_cpu",
    description="a small ACT for CPU runs on sim demos (the demo): ResNet18 from scratch with learned batch norm, "
                "64x64 with padding, 2 encoder layers, no VAE, chunk 30, AdamW lr 3e-4, batch 64, bfloat16 autocast "
                "where the CPU computes bf16 natively",
    policy_type="act",
    settings={
        "policy.type": "act",
        "policy.vision_backbone": "resnet18",
        "policy.pretrained_backbone_weights": "null",  # no download: trains offline
        "policy.chunk_size": "30",
        "policy.n_action_steps": "30",
        "policy.dim_model": "256",
        "policy.n_heads": "8",
        "policy.dim_feedforward": "1024",
        "policy.n_encoder_layers": "2",
        "policy.n_decoder_layers": "1",
        # Scripted demonstrations are one trajectory per start: nothing for the VAE to model.
        "policy.use_vae": "false",
        # Batch 64 at 3e-4 rather than 8 at 1e-4: twice the samples a second on 2 cores (98 against 42, Intel
        # Xeon, bf16) and, at 102k samples, 8/20 unseen seeds against 3/10 at 49k (the README's rung b).
        "policy.optimizer_lr": "3e-4",
        "policy.optimizer_lr_backbone": "3e-4",
        "policy.optimizer_weight_decay": "1e-4",
        "policy.device": "cpu",
        # bfloat16 autocast (lerobot's use_amp): 1.15-1.35x faster updates on a CPU with AVX512_BF16, 12x
        # slower on one without (training/cpu_numerics.py).
        "policy.use_amp": AUTO,
        "batch_size": "64",
        # Loader workers would take the cores the update needs (measured: no faster on 2 cores).
        "num_workers": "0",
        "steps": "20000",
        "save_freq": "500",
    },
    resize_with_pad=(64, 64),
)
PRESETS["act_state_cpu"] = TrainPreset(
    name="act_state_cpu",
    description="the diagnostic rung of perfect perception: ACT on the sim's object state "
                "(observation.environment_state: cube pose, target position) and the joints, no cameras; "
                "4 encoder layers, no VAE, chunk 30 executed whole, AdamW lr 3e-4, batch 64, float32",
    policy_type="act",
    settings={
        "policy.type": "act",
        "policy.pretrained_backbone_weights": "null",  # no cameras, no backbone: nothing to download
        "policy.chunk_size": "30",
        # The whole chunk: the expert holds still before it closes, lifts and opens the gripper, and a state
        # that does not change says nothing of how long it has held. Chunks replaced after a few actions
        # restart the hold and never reach the motion after it (measured through ROS: 1/10 at 10 actions a
        # chunk, the same weights 10/10 at 30).
        "policy.n_action_steps": "30",
        "policy.dim_model": "256",
        "policy.n_heads": "8",
        "policy.dim_feedforward": "1024",
        "policy.n_encoder_layers": "4",
        "policy.n_decoder_layers": "1",
        "policy.use_vae": "false",
        # lerobot's ACT leaves ENV features unnormalized: metres that vary by centimetres would reach the
        # encoder as a near-constant.
        "policy.normalization_mapping": '{"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ENV": "MEAN_STD", '
                                        '"ACTION": "MEAN_STD"}',
        "policy.optimizer_lr": "3e-4",
        "policy.optimizer_lr_backbone": "3e-4",
        "policy.optimizer_weight_decay": "1e-4",
        "policy.device": "cpu",
        # A few thousand parameters per token and three tokens: autocast's casts would cost more than it saves.
        "policy.use_amp": "false",
        "batch_size": "64",
        "num_workers": "0",
        "steps": "100000",
        "save_freq": "2000",
    },
    excluded_cameras=CAMERAS,
    environment_state=True,
)
PRESETS["smolvla_wrist"] = TrainPreset(
    name="smolvla_wrist",
    description="smolvla_dual with the wrist camera alone",
    policy_type="smolvla",
    settings=dict(PRESETS["smolvla_dual"].settings),
    excluded_cameras=("overhead",),
    reference={"final_loss": "0.006", "s_per_step": "1.7", "params": "450M"},
)


class PresetError(ValueError):
    """An unknown preset, camera or malformed override; the message lists what is valid."""


def parse_overrides(arguments: list[str]) -> dict[str, str]:
    """`--key=value` / `--key value` lerobot-style arguments -> {key: value}."""
    overrides: dict[str, str] = {}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("--") or argument == "--":
            raise PresetError(f"expected a lerobot-train setting like --steps=5000, found '{argument}'")
        key, separator, value = argument[2:].partition("=")
        if not separator:
            if index + 1 >= len(arguments) or arguments[index + 1].startswith("--"):
                raise PresetError(f"'{argument}' has no value: write --{key}=VALUE")
            index += 1
            value = arguments[index]
        overrides[key] = value
        index += 1
    return overrides


@dataclass(frozen=True)
class ResolvedRun:
    preset: TrainPreset
    settings: dict[str, str]
    cameras: tuple[str, ...]
    numeric_path: str | None = None  # a CPU run's: what it trains in, on which CPU, and who chose it

    def lerobot_args(self) -> list[str]:
        return [f"--{key}={value}" for key, value in self.settings.items()]


def resolve(name: str, overrides: dict[str, str] | None = None, exclude_cameras: tuple[str, ...] = (),
            available_cameras: tuple[str, ...] = CAMERAS, has_environment_state: bool = False,
            cpu: NumericPath | None = None) -> ResolvedRun:
    """The run's lerobot-train settings. `has_environment_state`: the dataset records the sim's object state.
    `cpu`: the numeric path of this machine's CPU (default: read from it), for `policy.use_amp=auto`."""
    if name not in PRESETS:
        raise PresetError(f"unknown preset '{name}'; presets are {sorted(PRESETS)}")
    preset = PRESETS[name]
    overrides = dict(overrides or {})
    if "policy.type" in overrides and "policy.path" in preset.settings:
        raise PresetError(f"preset '{name}' fine-tunes {preset.settings['policy.path']}; override --policy.path, "
                          "not --policy.type")
    settings = {**COMMON, **preset.settings, **overrides}
    unknown = sorted(set(exclude_cameras) - set(available_cameras))
    if unknown:
        raise PresetError(f"cannot exclude {unknown}: the dataset's cameras are {list(available_cameras)}")
    if preset.environment_state and not has_environment_state:
        raise PresetError(f"preset '{name}' trains on the sim's object state (observation.environment_state), which "
                          "this dataset does not record: record one with `so101 dataset sim --environment-state`")
    excluded = set(preset.excluded_cameras) | set(exclude_cameras)
    cameras = tuple(camera for camera in available_cameras if camera not in excluded)
    if not cameras and not preset.environment_state:
        raise PresetError(f"every camera is excluded ({sorted(excluded)}); a policy needs at least one")
    numeric_path = None
    if settings.get("policy.device") == "cpu":
        cpu = cpu or cpu_numeric_path()
        requested = settings.get("policy.use_amp", "false")
        settings["policy.use_amp"] = resolve_use_amp(requested, "cpu", cpu)
        numeric_path = describe_numeric_path(requested, settings["policy.use_amp"], cpu)
    elif "policy.use_amp" in settings:  # a GPU, or lerobot's choice of device: the CPU's rule where it is not one
        settings["policy.use_amp"] = resolve_use_amp(settings["policy.use_amp"], settings.get("policy.device", ""),
                                                     cpu or cpu_numeric_path())
    return ResolvedRun(preset, settings, cameras, numeric_path)
