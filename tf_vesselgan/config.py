"""Typed, frozen experiment configs loaded from YAML under `experiments/`.

Unknown keys, wrong types and out-of-range values are `ConfigError`s that name the
file and the dotted key; the resolved config is written into each run folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tf_vesselgan.errors import ConfigError


def _opt(default, lo=None, hi=None, choices=None):
    """A dataclass field with a documented valid range or choice set."""
    meta = {}
    if lo is not None or hi is not None:
        meta["range"] = (lo, hi)
    if choices is not None:
        meta["choices"] = tuple(choices)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SplitConfig:
    """Patient-level split: fractions, or explicit case lists (which then win)."""

    train: float = _opt(41 / 66, 0.0, 1.0)
    val: float = _opt(11 / 66, 0.0, 1.0)
    test: float = _opt(14 / 66, 0.0, 1.0)
    train_cases: list[str] | None = None
    val_cases: list[str] | None = None
    test_cases: list[str] | None = None


@dataclass(frozen=True)
class DataConfig:
    """How volumes become patches (Kossen et al.: 96x96, 500 vessel + 500 random)."""

    patch_size: int = _opt(96, 8, 1024)
    n_vessel: int = _opt(500, 0, 1_000_000)
    n_random: int = _opt(500, 0, 1_000_000)
    split: SplitConfig = field(default_factory=SplitConfig)
    # Maps raw label values to {0, 1}, e.g. {0: 0, 1: 1, 2: 1}; None = must be {0,1}.
    label_map: dict[int, int] | None = None
    # U-net normalisation: z-score with training-set statistics (the paper's code)
    # or per patch (the paper's text). GAN input is always per-patch min-max.
    unet_normalization: str = _opt("global", choices=("global", "per_patch"))
    shard_size: int = _opt(2048, 1, 1_000_000)
    compression: str = _opt("GZIP", choices=("GZIP", "NONE"))


@dataclass(frozen=True)
class GANConfig:
    """GAN architecture and training (defaults: the paper's WGAN-GP-SN at paper width)."""

    arch: str = _opt("wgan-gp-sn", choices=("dcgan", "wgan-gp", "wgan-gp-sn"))
    latent_dim: int = _opt(100, 1, 4096)
    width: float = _opt(1.0, 0.001, 4.0)
    batch_size: int = _opt(300, 1, 100_000)
    epochs: int = _opt(180, 1, 100_000)
    steps_per_epoch: int | None = _opt(None, 1, 10_000_000)  # cap per epoch (demos)
    n_critic: int = _opt(5, 1, 100)
    gp_weight: float = _opt(10.0, 0.0, 1e6)
    # None = the paper's per-architecture value (DCGAN 3e-4, β1 0.5; WGAN 1e-4, β (0, 0.9))
    d_learning_rate: float | None = _opt(None, 0.0, 1.0)
    g_learning_rate: float | None = _opt(None, 0.0, 1.0)
    beta_1: float | None = _opt(None, 0.0, 1.0)
    beta_2: float | None = _opt(None, 0.0, 1.0)
    label_smoothing: bool = True
    feature_matching: str = _opt("replace", choices=("replace", "add", "off"))
    feature_matching_weight: float = _opt(1.0, 0.0, 1e6)
    minibatch_discrimination: bool = True
    label_threshold: float = _opt(0.8, -1.0, 1.0)
    threshold_in_training: bool = False
    checkpoint_every: int = _opt(1, 1, 100_000)
    keep_checkpoints: int = _opt(3, 1, 1000)
    image_grid: int = _opt(16, 0, 256)
    strategy: str = _opt("auto", choices=("auto", "default", "mirrored", "multiworker"))
    devices: list[str] | None = None


@dataclass(frozen=True)
class UNetConfig:
    """Half U-net training, inference and tuning."""

    width: float = _opt(1.0, 0.001, 4.0)
    dropout: float = _opt(0.1, 0.0, 0.9)
    learning_rate: float = _opt(1e-4, 1e-7, 1.0)
    batch_size: int = _opt(32, 1, 100_000)
    epochs: int = _opt(10, 1, 100_000)
    steps_per_epoch: int | None = _opt(None, 1, 10_000_000)
    # auto: the patches' own choice (data.unet_normalization) for real-only training,
    # per-patch min-max (the GAN's scale) whenever synthetic pairs are involved, so
    # real and synthetic inputs look alike to the U-net.
    normalization: str = _opt("auto", choices=("auto", "global", "per_patch", "minmax"))
    augment: bool = False
    threshold: float = _opt(0.5, 0.0, 1.0)
    tune_threshold: bool = False
    inference_stride: int = _opt(48, 8, 1024)
    inference_batch: int = _opt(64, 1, 4096)
    tuner: str = _opt("random", choices=("random", "bayesian"))
    max_trials: int = _opt(10, 1, 10_000)
    tune_epochs: int = _opt(3, 1, 10_000)
    lr_min: float = _opt(1e-5, 1e-8, 1.0)
    lr_max: float = _opt(1e-3, 1e-8, 1.0)
    dropout_min: float = _opt(0.0, 0.0, 0.9)
    dropout_max: float = _opt(0.5, 0.0, 0.9)


@dataclass(frozen=True)
class StudyConfig:
    """What `vesselgan run` does: the paper's anonymization / augmentation studies."""

    kind: str = _opt("anonymization", choices=("anonymization", "augmentation", "transfer"))
    gans: list[str] = _opt(["dcgan", "wgan-gp", "wgan-gp-sn"])
    phantom_cases: int = _opt(0, 0, 1000)  # > 0: run on a built-in phantom of this many cases
    n_samples: int = _opt(2000, 1, 10_000_000)
    fid_samples: int = _opt(1000, 4, 1_000_000)
    privacy: bool = True
    # transfer: U-nets on n training patients of a second data set (--transfer-data, or a
    # phantom of this many cases), from scratch vs from the synthetic-pretrained U-net
    transfer_n: list[int] = _opt([1, 3, 5, 7, 9, 11, 13, 15])
    transfer_phantom_cases: int = _opt(0, 0, 1000)
    # per-GAN integer settings over the shared `gan` section, e.g. the paper's DCGAN:
    # {dcgan: {batch_size: 512, epochs: 178}}
    gan_overrides: dict[str, dict[str, int]] = _opt({})


@dataclass(frozen=True)
class ExperimentConfig:
    """Top-level config; each stage reads its own section."""

    name: str = "default"
    seed: int = _opt(1, 0, 2**31 - 1)
    data: DataConfig = field(default_factory=DataConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    study: StudyConfig = field(default_factory=StudyConfig)


# ----------------------------------------------------------------------------- loading


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value, tp, where: str, source: str):
    """Checks `value` against annotation `tp`, converting where lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for a in non_none:
            try:
                return _convert(value, a, where, source)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{where}': expected a mapping, got {type(value).__name__}")
        return _build(tp, value, where, source)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: key '{where}': expected a list, got {type(value).__name__}")
        return [_convert(v, args[0], f"{where}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{where}': expected a mapping, got {type(value).__name__}")
        return {
            _convert(k, args[0], f"{where}.{k}", source): _convert(v, args[1], f"{where}.{k}", source)
            for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: key '{where}': expected float, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{where}': expected int, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{where}': expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{where}': expected str, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {where}")  # a bug, not a user error


def _build(cls, mapping: dict, prefix: str, source: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ConfigError(f"{source}: unknown key '{key}' (allowed: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in mapping.items():
        where = f"{prefix}.{name}" if prefix else name
        value = _convert(value, hints[name], where, source)
        meta = fields[name].metadata
        if "range" in meta and value is not None:
            lo, hi = meta["range"]
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise ConfigError(f"{source}: key '{where}': {value!r} is out of range [{lo}, {hi}]")
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{source}: key '{where}': {value!r} is not one of {list(meta['choices'])}")
        kwargs[name] = value
    obj = cls(**kwargs)
    _check(obj, prefix, source)
    return obj


def _check(obj, prefix: str, source: str) -> None:
    """Cross-field checks."""
    if isinstance(obj, SplitConfig):
        lists = [obj.train_cases, obj.val_cases, obj.test_cases]
        if all(x is None for x in lists):
            total = obj.train + obj.val + obj.test
            if abs(total - 1.0) > 1e-6:
                raise ConfigError(f"{source}: key '{prefix}': train + val + test fractions must sum to 1, got {total:g}")
        elif obj.train_cases is None:
            raise ConfigError(f"{source}: key '{prefix}.train_cases': required when case lists are given")
    if isinstance(obj, DataConfig) and obj.label_map is not None:
        bad = [v for v in obj.label_map.values() if v not in (0, 1)]
        if bad:
            raise ConfigError(f"{source}: key '{prefix}.label_map': targets must be 0 or 1, got {bad[0]}")


def from_dict(mapping: dict | None, source: str = "<config>", cls=ExperimentConfig):
    """Builds a config object from a plain mapping (missing keys take defaults)."""
    return _build(cls, mapping or {}, "", source)


def load_config(path: str | Path | None, overrides: dict | None = None) -> ExperimentConfig:
    """Loads a YAML config (or the defaults when `path` is None) and applies overrides.

    Args:
        path: YAML file; None for the built-in defaults.
        overrides: nested mapping merged over the file (e.g. from CLI flags).

    Raises:
        ConfigError: unreadable file, unknown key, wrong type, out-of-range value.
    """
    mapping: dict = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read config ({exc.strerror})") from None
        try:
            mapping = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            at = f" at line {line + 1}" if line is not None else ""
            raise ConfigError(f"{source}: not valid YAML{at}") from None
        if not isinstance(mapping, dict):
            raise ConfigError(f"{source}: top level must be a mapping")
    if overrides:
        mapping = _merge(mapping, overrides)
    return from_dict(mapping, source)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_hash(cfg) -> str:
    """Stable hash of a config (section), for manifests and stage caching."""
    text = json.dumps(to_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_config(cfg, path: str | Path) -> None:
    """Writes the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
