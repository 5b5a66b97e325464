"""Configuration: dataclasses whose defaults are the paper's (docs/method.md).

``PretrainConfig`` is pretraining's (§2-§6); ``EvalConfig`` is the downstream protocols' (§7:
linear probe, fine-tuning, semi-supervised fine-tuning, transfer, test).

Resolution order, later wins: dataclass defaults -> preset JSON (``presets/<name>.json``, then
``presets/<name>-<dataset>[-<benchmark>].json`` when present) -> ``--config FILE`` (JSON) ->
named CLI flags -> ``--set section.key=value``. The resolved config is saved as plain JSON in
the run directory and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from s2v.errors import S2VError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


class ConfigError(S2VError):
    """An unknown key, a value of the wrong type, or a missing preset."""


@dataclass
class ModelConfig:
    frames: int = 90  # T: frames per clip (s2v 90, mamp 120)
    segment: int = 3  # s: frames per token (s2v 3, mamp 4) -> T/s = 30 temporal tokens
    joints: int = 25  # V
    channels: int = 3  # x, y, z
    dim: int = 256  # encoder width
    depth: int = 8  # encoder blocks
    heads: int = 8
    mlp_ratio: float = 4.0  # MLP 1024 at width 256
    decoder_dim: int = 256
    decoder_depth: int = 3
    decoder_heads: int = 8
    layer_scale: float = 1e-4  # LayerScale init (0: none, as MAMP)
    drop_path: float = 0.0  # 0 in pretraining
    qkv_bias: bool = True


# named model sizes for `--model-size` (tiny is for tests and smoke runs)
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "base": {},
    "small": dict(dim=128, depth=4, heads=4, decoder_dim=128, decoder_depth=2, decoder_heads=4),
    "tiny": dict(dim=32, depth=2, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2),
}


@dataclass
class MaskConfig:
    mode: str = "motion-tube"  # motion-tube | tube (beta = 0) | random (MAE) | motion (MAMP)
    ratio: float = 0.9  # n_keep = int(n * (1 - ratio)): 2 of 25 joints, 74 of 750 tokens
    tube: int = 5  # a: temporal tokens per tube
    beta: float = 0.10  # motion weight in the tube score (0.10 NTU-60/PKU, 0.20 NTU-120)
    tau: float = 0.80  # MAMP temperature (0.80 NTU-60/PKU, 0.75 NTU-120)
    motion: str = "prior"  # prior (the store's, gathered by the loader) | batch (recomputed)


@dataclass
class TargetConfig:
    kind: str = "features"  # features (teacher blocks, data2vec 2.0) | motion (MAMP)
    layers: int = 0  # average the last k encoder blocks (0: all)
    ema_start: float = 0.9999
    ema_end: float = 1.0


@dataclass
class DataConfig:
    benchmark: str = "xsub"
    sampler: str = "uniform"  # uniform (s2v) | crop_resize (mamp)
    rotation: float = 0.3  # max rotation angle (rad) about x, y, z
    workers: int = 4  # DataLoader workers per rank
    in_memory: bool = False  # load the benchmark's clips into RAM once
    block_window: int = 0  # >0: shuffle within runs of this many storage blocks (faster streaming)
    align_view: bool = False  # the preset expects a view-aligned store (NTU-60 xview)


@dataclass
class OptimConfig:
    epochs: int = 800
    warmup_epochs: int = 20
    batch_size: int = 128  # global: over all ranks and accumulation steps
    accum: int = 1  # gradient accumulation micro-steps per optimiser step
    lr: float = 1e-3
    min_lr: float = 1e-5
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.05
    clip_grad: float = 4.0  # 0 disables


@dataclass
class RunConfig:
    out: str = "runs/pretrain"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps
    compile: bool = False  # torch.compile the student
    amp: bool = True  # bf16 autocast (CUDA only)
    log_every: int = 10  # optimiser steps between metrics lines
    ckpt_every: int = 100  # epochs between kept checkpoint-epXXXX.pt (latest: every epoch)
    max_steps: int = 0  # stop (and checkpoint) after this many optimiser steps; 0: whole run


@dataclass
class PretrainConfig:
    preset: str = "s2v"
    dataset: str = ""  # the store's dataset (ntu60, ntu120, pku1, pku2), recorded on resolve
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON- and ``weights_only``-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainConfig:
        cfg = cls()
        update(cfg, d)
        return cfg


# --------------------------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------------------------


def update(obj: Any, values: dict[str, Any], where: str = "") -> None:
    """Recursively set dataclass fields from a nested dict; unknown keys are errors."""
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key.startswith("_"):  # "_about": comments in preset files
            continue
        name = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key '{name}' (known: {', '.join(known)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{name}' is a section, got {value!r}")
            update(current, value, f"{name}.")
        else:
            setattr(obj, key, _coerce(value, current, name))


def _coerce(value: Any, current: Any, name: str) -> Any:
    """value converted to the type of the field's current value (JSON numbers, CLI strings)."""
    kind = type(current)
    try:
        if kind is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{name}': expected {kind.__name__}, got {value!r}") from None
    return value


def set_dotted(cfg: PretrainConfig, assignment: str) -> None:
    """Apply one ``section.key=value`` override (value parsed as JSON when possible)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    nested: Any = value
    for part in reversed(key.split(".")):
        if not part:
            raise ConfigError(f"--set {assignment!r}: empty key part")
        nested = {part: nested}
    update(cfg, nested)


# --------------------------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------------------------


def available_presets() -> list[str]:
    """Names of the preset files shipped in ``presets/`` (without .json)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def preset_files(preset: str, dataset: str = "", benchmark: str = "") -> list[Path]:
    """The preset files that apply, most general first.

    ``preset`` is a shipped name (``s2v``, ``mamp``) or a path to a JSON file.
    """
    if preset.endswith(".json") or "/" in preset:
        return [Path(preset)]
    base = PRESETS_DIR / f"{preset}.json"
    if not base.is_file():
        names = sorted({n.split("-")[0] for n in available_presets() if n.split("-")[0] != "eval"})
        raise ConfigError(f"unknown preset '{preset}' (available: {', '.join(names)})")
    files = [base]
    for name in (f"{preset}-{dataset}", f"{preset}-{dataset}-{benchmark}"):
        if dataset and (PRESETS_DIR / f"{name}.json").is_file():
            files.append(PRESETS_DIR / f"{name}.json")
    return files


def resolve(
    preset: str = "s2v",
    dataset: str = "",
    benchmark: str = "xsub",
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | tuple[str, ...] = (),
) -> PretrainConfig:
    """Build the run's config: defaults <- presets <- config file <- overrides <- ``--set``."""
    cfg = PretrainConfig()
    _layer(cfg, preset_files(preset, dataset, benchmark), config_file)
    cfg.preset, cfg.dataset, cfg.data.benchmark = preset, dataset, benchmark
    _finish_layers(cfg, overrides, sets)
    validate(cfg)
    return cfg


def _layer(cfg: Any, files: list[Path], config_file: str | Path | None) -> None:
    """The file layers of a config, in order: presets, then the user's config file."""
    for path in files:
        update(cfg, read_json(path))
    if config_file is not None:
        update(cfg, read_json(config_file))


def _finish_layers(
    cfg: Any, overrides: dict[str, Any] | None, sets: list[str] | tuple[str, ...]
) -> None:
    """The layers above the command's own fields: programmatic overrides, then ``--set``."""
    if overrides:
        update(cfg, overrides)
    for s in sets:
        set_dotted(cfg, s)


def validate(cfg: PretrainConfig) -> None:
    """Cross-field checks with one-line messages."""
    m, k = cfg.model, cfg.mask
    if m.frames % m.segment:
        raise ConfigError(f"model.frames={m.frames} is not a multiple of model.segment={m.segment}")
    if m.dim % m.heads or m.decoder_dim % m.decoder_heads:
        raise ConfigError("model widths must be multiples of their head counts")
    if k.mode not in ("motion-tube", "tube", "random", "motion"):
        raise ConfigError(f"mask.mode '{k.mode}': expected motion-tube, tube, random or motion")
    if k.mode in ("motion-tube", "tube") and (m.frames // m.segment) % k.tube:
        raise ConfigError(
            f"{m.frames // m.segment} temporal tokens are not a multiple of mask.tube={k.tube}"
        )
    if k.motion not in ("prior", "batch"):
        raise ConfigError(f"mask.motion '{k.motion}': expected prior or batch")
    if cfg.target.kind not in ("features", "motion"):
        raise ConfigError(f"target.kind '{cfg.target.kind}': expected features or motion")
    if cfg.data.sampler not in ("uniform", "crop_resize"):
        raise ConfigError(f"data.sampler '{cfg.data.sampler}': expected uniform or crop_resize")
    o = cfg.optim
    if o.batch_size < 1 or o.accum < 1 or o.epochs < 1:
        raise ConfigError("optim.batch_size, optim.accum and optim.epochs must be >= 1")


def save_json(cfg: PretrainConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# downstream protocols (docs/method.md §7)
# --------------------------------------------------------------------------------------------

PROTOCOLS = ("linear", "finetune", "semi")
SCRATCH = ("scratch", "random")  # RUN_OR_CKPT values that mean "no pretraining"


@dataclass
class HeadConfig:
    kind: str = "linear"  # linear: BN(affine=False) + Linear on pooled features | mlp: MAMP's
    hidden: int = 2048  # mlp: Linear(V*D, hidden)-BN-ReLU-Linear(hidden, classes)
    dropout: float = 0.0  # mlp: dropout on the encoder output (0.3 fine-tuning)
    init_std: float = 0.01  # trunc-normal std of the head's Linear weights


@dataclass
class EvalOptimConfig(OptimConfig):
    """Defaults are the linear probe's; ``presets/eval-finetune.json`` holds fine-tuning's."""

    optimizer: str = "sgd"  # sgd (linear probe) | adamw (fine-tuning)
    epochs: int = 100
    warmup_epochs: int = 0
    batch_size: int = 256
    lr: float = 0.1
    min_lr: float = 0.0
    beta2: float = 0.999  # AdamW (torch's default, as the reference fine-tuning)
    weight_decay: float = 0.0
    clip_grad: float = 0.0  # 0 disables
    momentum: float = 0.9  # SGD
    layer_decay: float = 1.0  # layer-wise lr decay (0.8 fine-tuning); 1: none
    label_smoothing: float = 0.0


@dataclass
class EvalDataConfig(DataConfig):
    fraction: float = 1.0  # semi: share of the training split, class-stratified
    subset_seed: int = -1  # semi: seed of the subset (-1: run.seed)
    eval_clips: int = 1  # clips per test sample in the per-epoch evaluation
    test_clips: int = 10  # clips averaged in the final test (uniform sampler only)
    cache_features: bool = False  # linear: encode once without augmentation, train on features


@dataclass
class EvalConfig:
    protocol: str = "linear"  # linear | finetune | semi
    dataset: str = ""  # the store's dataset, recorded on resolve
    checkpoint: str = ""  # the pretraining checkpoint, or "scratch" (random initialisation)
    source_dataset: str = ""  # the pretraining store's dataset (transfer when it differs)
    weights: str = "teacher"  # teacher (EMA, the paper's) | student encoder of the checkpoint
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    optim: EvalOptimConfig = field(default_factory=EvalOptimConfig)
    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(out="runs/eval"))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON- and ``weights_only``-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalConfig:
        cfg = cls()
        update(cfg, d)
        return cfg


def eval_preset_files(protocol: str, dataset: str = "", benchmark: str = "") -> list[Path]:
    """``presets/eval-<p>.json`` then ``eval-<p>-<dataset>[-<benchmark>].json`` when present;
    semi-supervised fine-tuning uses the fine-tuning files."""
    base = "finetune" if protocol == "semi" else protocol
    names = [f"eval-{base}", f"eval-{base}-{dataset}", f"eval-{base}-{dataset}-{benchmark}"]
    files = [PRESETS_DIR / f"{n}.json" for n in names[: 3 if dataset else 1]]
    return [f for f in files if f.is_file()]


def resolve_eval(
    protocol: str,
    dataset: str,
    benchmark: str,
    pretrained: PretrainConfig | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | tuple[str, ...] = (),
) -> EvalConfig:
    """A protocol's config: defaults <- the pretraining run's model and temporal sampling <-
    protocol presets <- config file <- overrides <- ``--set``.

    ``pretrained`` is the checkpoint's config (for scratch runs: a resolved pretraining preset,
    which gives the architecture and the sampler).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol '{protocol}': expected one of {', '.join(PROTOCOLS)}")
    cfg = EvalConfig()
    if pretrained is not None:
        cfg.model = dataclasses.replace(pretrained.model)
        cfg.source_dataset = pretrained.dataset
        for key in ("sampler", "rotation", "align_view"):
            setattr(cfg.data, key, getattr(pretrained.data, key))
    if cfg.data.sampler == "crop_resize":  # MAMP tests one centre crop
        cfg.data.test_clips = cfg.data.eval_clips = 1
    _layer(cfg, eval_preset_files(protocol, dataset, benchmark), config_file)
    cfg.protocol, cfg.dataset, cfg.data.benchmark = protocol, dataset, benchmark
    _finish_layers(cfg, overrides, sets)
    validate_eval(cfg)
    return cfg


def validate_eval(cfg: EvalConfig) -> None:
    """Cross-field checks of a protocol's config, one-line messages."""
    m, o, d = cfg.model, cfg.optim, cfg.data
    if m.frames % m.segment:
        raise ConfigError(f"model.frames={m.frames} is not a multiple of model.segment={m.segment}")
    if cfg.head.kind not in ("linear", "mlp"):
        raise ConfigError(f"head.kind '{cfg.head.kind}': expected linear or mlp")
    if o.optimizer not in ("sgd", "adamw"):
        raise ConfigError(f"optim.optimizer '{o.optimizer}': expected sgd or adamw")
    if cfg.weights not in ("teacher", "student"):
        raise ConfigError(f"weights '{cfg.weights}': expected teacher or student")
    if o.batch_size < 1 or o.epochs < 1 or o.accum != 1:
        raise ConfigError("optim.batch_size and optim.epochs must be >= 1 (and optim.accum 1)")
    if not 0.0 < o.layer_decay <= 1.0:
        raise ConfigError(f"optim.layer_decay={o.layer_decay}: expected a value in (0, 1]")
    if not 0.0 < d.fraction <= 1.0:
        raise ConfigError(f"data.fraction={d.fraction}: expected a value in (0, 1]")
    if d.eval_clips < 1 or d.test_clips < 1:
        raise ConfigError("data.eval_clips and data.test_clips must be >= 1")
    if d.sampler not in ("uniform", "crop_resize"):
        raise ConfigError(f"data.sampler '{d.sampler}': expected uniform or crop_resize")
    if d.sampler == "crop_resize" and max(d.eval_clips, d.test_clips) > 1:
        raise ConfigError("several test clips need the uniform sampler (crop_resize tests one)")
    if d.cache_features and cfg.head.kind != "linear":
        raise ConfigError("data.cache_features applies to the linear probe only")
