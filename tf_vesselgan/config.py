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


DIFF_AUGMENT_POLICIES = ("translation", "cutout", "flip")


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD for the critic (training/dp.py): each critic update sees a Poisson sample of
    the training patches (inclusion probability batch_size / N), per-example gradients
    clipped to L2 norm `l2_clip`, Gaussian noise of std noise_multiplier · l2_clip."""

    # > 0, or 'auto': the smallest σ (to 0.001) with which `planned_updates` critic
    # updates stay within target_epsilon (a sweep over ε then spends each target in the
    # same number of updates, instead of a fixed σ whose larger targets a budget never reaches)
    noise_multiplier: float | str = _opt(1.0, 0.0, 1e4)
    l2_clip: float = _opt(1.0, 0.0, 1e6)  # > 0
    delta: float = _opt(1e-5, 0.0, 1.0)  # in (0, 1)
    # training stops before ε would exceed this; None = no stop (ε is still logged)
    target_epsilon: float | None = _opt(None, 0.0, 1e6)
    planned_updates: int | None = _opt(None, 1, 10**9)  # for noise_multiplier: auto


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
    # Learning-rate decay (None = off): both learning rates stay constant until this
    # fraction of the training budget is spent, then fall linearly towards 0 at its end,
    # set at each epoch's start. The budget's fraction is the larger of epochs done /
    # gan.epochs and machine-seconds spent / gan.max_seconds (when set).
    lr_decay_from: float | None = _opt(None, 0.0, 0.99)
    label_smoothing: bool = True
    feature_matching: str = _opt("replace", choices=("replace", "add", "off"))
    feature_matching_weight: float = _opt(1.0, 0.0, 1e6)
    minibatch_discrimination: bool = True
    # A float in the tanh range, or "auto": the threshold at which the samples' label
    # fraction equals the real training patches' (calibrated when the generator is saved,
    # stored in run.json and used by sample/export/serve).
    label_threshold: float | str = _opt(0.8, -1.0, 1.0)
    threshold_in_training: bool = False
    # how real labels reach the critic: unit {0, 1} (the paper's code) or signed {-1, 1}
    # (the background at the tanh floor, like the image's darkest voxels)
    label_coding: str = _opt("unit", choices=("unit", "signed"))
    # Sampling generator: an exponential moving average of the generator's weights
    # (Yazici et al. 2019; 0 = off), and its batch-norm statistics: "recalibrate" =
    # population statistics of the final weights over noise batches (what the paper's
    # batch-statistics sampling converges to), "moving" = Keras' momentum-0.99 averages.
    ema_decay: float = _opt(0.0, 0.0, 0.99999)
    sample_bn: str = _opt("recalibrate", choices=("recalibrate", "moving"))
    # A fixed Gaussian blur (sigma in pixels; 0 = off) of the sampling generator's label
    # channel before its threshold (and its calibration): joins the isolated pixels a
    # briefly trained generator marks into connected components (on ICBM the labels then
    # look real, but the synthetic-only U-net's Dice did not change: README).
    label_blur: float = _opt(0.0, 0.0, 8.0)
    # Labels only where the sample's image is this bright (the patch min-max scaled to
    # [0, 1]; 0 = off), before the threshold's calibration: "auto" = the 1st percentile of
    # the real training patches' vessel pixels (stored in run.json, baked into exports).
    # A sampling setting: changing it on a finished run re-saves its generator, no training.
    label_min_intensity: float | str = _opt(0.0, 0.0, 1.0)
    # The critic's layout: "mirror" (5 convolutions mirroring the generator's channels) or
    # "official" (the paper's code: the DCGAN discriminator's 50-channel conv, dense 200,
    # minibatch discrimination of 100 features; normalisation on every conv). README "GANs".
    critic_layout: str = _opt("mirror", choices=("mirror", "official"))
    # The real pairs of a WGAN step's n_critic critic updates: "fresh" (n_critic batches per
    # step) or "reuse" (one batch for all of them, as the paper's code: an epoch then has
    # n_critic times the generator updates). Not with gan.dp (each update needs its own
    # Poisson sample for the accounting).
    critic_reals: str = _opt("fresh", choices=("fresh", "reuse"))
    # The generator's upsampling: "transposed" (the paper's 5x5 stride-2 transposed
    # convolutions) or "resize" (nearest-neighbour x2 + 3x3 convolution, no checkerboard).
    upsample: str = _opt("transposed", choices=("transposed", "resize"))
    # The label channel's layer: "shared" (the last layer draws image and label, the paper)
    # or "image" (a head of its own that sees the drawn image; models/generator.py).
    label_head: str = _opt("shared", choices=("shared", "image"))
    # DiffAugment (Zhao et al. 2020) of real and fake pairs before the critic: a
    # comma-separated subset of translation, cutout, flip ("" = off).
    diff_augment: str = ""
    # A label teacher (0 steps = off): before the GAN trains, a U-net of width
    # label_teacher_width (no dropout, Dice loss) trains label_teacher_steps steps on the
    # GAN's real training pairs, then stays frozen; its CPU time counts in max_seconds. The
    # generator's loss gains label_teacher_weight × the binary cross-entropy between its
    # label channel and the teacher's vessel probability on the image it drew: labels that
    # agree with what a segmentation of the real data sees in the image. Not with gan.dp.
    label_teacher_steps: int = _opt(0, 0, 10_000_000)
    label_teacher_width: float = _opt(0.25, 0.001, 4.0)
    label_teacher_weight: float = _opt(1.0, 0.0, 1e6)
    # Budget in machine-seconds (process CPU time / available cores, summed over resumes;
    # equal to wall time when the run has the machine to itself). None = epochs decide.
    max_seconds: float | None = _opt(None, 1.0, 1e9)
    # Every N epochs: the sampling generator saved under snapshots/ with its quality
    # (collapse std, label fraction and, when scored, quality_score); 0 = off. A scored
    # run's final generator.keras is its best snapshot by that score.
    snapshot_every: int = _opt(0, 0, 100_000)
    # The score (training/snapshots.py): fid (lower is better) or gan_test (higher) in a
    # real-trained U-net given as quality_features "unet:RUN"; gan_train (higher): Dice on
    # real patches (the validation patients', else the training patients') of a small
    # U-net (quality_unet_width) trained quality_unet_steps on quality_samples synthetic
    # pairs. fid/gan_test score only with quality_features; gan_train always scores.
    quality_score: str = _opt("fid", choices=("fid", "gan_test", "gan_train"))
    quality_features: str | None = None
    quality_samples: int = _opt(500, 4, 100_000)
    quality_unet_width: float = _opt(0.25, 0.001, 4.0)
    quality_unet_steps: int = _opt(300, 1, 1_000_000)
    collapse_std_floor: float = _opt(0.02, 0.0, 2.0)
    # a warning when the fixed-noise samples' mean correlation with each other exceeds
    # this (real ICBM patches: 0.05; a partially collapsed DCGAN: 0.6)
    collapse_similarity_ceiling: float = _opt(0.5, 0.0, 1.0)
    # The epoch-end check (the sampling generator: weight average, batch-norm recalibration,
    # label calibration; its collapse check and image grid) every N epochs and at every
    # snapshot; other epochs log none of it. Checking every 8th epoch instead of every one
    # took 10 % off an ICBM DCGAN epoch at width 1/8 (README "GANs").
    monitor_every: int = _opt(1, 1, 100_000)
    checkpoint_every: int = _opt(1, 1, 100_000)
    keep_checkpoints: int = _opt(3, 1, 1000)
    image_grid: int = _opt(16, 0, 256)
    strategy: str = _opt("auto", choices=("auto", "default", "mirrored", "multiworker"))
    devices: list[str] | None = None
    # differentially private critic (DP-SGD); None = not DP
    dp: DPConfig | None = None


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
    # dice: soft Dice (the paper); dice_bce: soft Dice + binary cross-entropy; bce alone
    loss: str = _opt("dice", choices=("dice", "dice_bce", "bce"))
    threshold: float = _opt(0.5, 0.0, 1.0)
    tune_threshold: bool = False
    inference_stride: int = _opt(48, 8, 1024)
    inference_batch: int = _opt(64, 1, 4096)
    # overlapping tiles averaged uniformly or with a Gaussian weight (nnU-Net's); flip
    # test-time augmentation (4 flips per tile, 4x the inference time); 3D connected
    # components smaller than this many voxels removed from the segmentation (0 = off)
    tile_weighting: str = _opt("uniform", choices=("uniform", "gaussian"))
    tta_flips: bool = False
    min_component_voxels: int = _opt(0, 0, 10_000_000)
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
    phantom_shape: list[int] = _opt([128, 128, 64])  # its volumes' voxels (x, y, z)
    # its contrast: the flow path (mm) over which the vessels' inflow signal saturates and
    # the fat ring's mean intensity (tissue about 0.32); longer inflow and a dimmer ring put
    # the vessels on the patches' brightest pixels, as in the ICBM scans (README demo)
    phantom_inflow_mm: float = _opt(60.0, 1.0, 1e6)
    phantom_fat: float = _opt(0.78, 0.0, 10.0)
    n_samples: int = _opt(2000, 1, 10_000_000)
    fid_samples: int = _opt(1000, 4, 1_000_000)
    privacy: bool = True
    # transfer: U-nets on n training patients of a second data set (--transfer-data, or a
    # phantom of this many cases), from scratch vs from the synthetic-pretrained U-net
    transfer_n: list[int] = _opt([1, 3, 5, 7, 9, 11, 13, 15])
    transfer_phantom_cases: int = _opt(0, 0, 1000)
    # per-GAN settings over the shared `gan` section, e.g. the paper's DCGAN:
    # {dcgan: {batch_size: 512, epochs: 178}}
    gan_overrides: dict[str, dict[str, int | float | str]] = _opt({})
    # anonymization: a quality-vs-time curve, one synthetic-only U-net per GAN snapshot
    # saved by these machine-minutes of training (needs gan.snapshot_every); [] = off
    curve_minutes: list[float] = _opt([])
    # anonymization: the privacy-utility study, one arm per GAN and target ε (.inf = the
    # GAN without DP; the others use gan.dp, or its defaults, with that target_epsilon)
    dp_epsilons: list[float] = _opt([])


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
        if "range" in meta and isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi = meta["range"]
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"{source}: key '{where}': {value!r} is not a finite number")
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
    if isinstance(obj, GANConfig):
        if isinstance(obj.label_threshold, str) and obj.label_threshold != "auto":
            raise ConfigError(f"{source}: key '{prefix}.label_threshold': expected a number in [-1, 1] or 'auto', "
                              f"got {obj.label_threshold!r}")
        if isinstance(obj.label_min_intensity, str) and obj.label_min_intensity != "auto":
            raise ConfigError(f"{source}: key '{prefix}.label_min_intensity': expected a number in [0, 1] or "
                              f"'auto', got {obj.label_min_intensity!r}")
        if obj.label_coding == "signed" and obj.threshold_in_training:
            raise ConfigError(f"{source}: key '{prefix}.threshold_in_training': hard {{0, 1}} labels in training "
                              "need label_coding 'unit'")
        if obj.label_threshold == "auto" and obj.threshold_in_training:
            raise ConfigError(f"{source}: key '{prefix}.threshold_in_training': needs a numeric label_threshold, "
                              "not 'auto'")
        bad = sorted(set(p for p in obj.diff_augment.split(",") if p) - set(DIFF_AUGMENT_POLICIES))
        if bad:
            raise ConfigError(f"{source}: key '{prefix}.diff_augment': unknown policy '{bad[0]}' "
                              f"(allowed: {', '.join(DIFF_AUGMENT_POLICIES)})")
        if obj.quality_features is not None and not obj.snapshot_every:
            raise ConfigError(f"{source}: key '{prefix}.quality_features': needs snapshot_every > 0 (FID is "
                              "measured on snapshots)")
        if obj.quality_score == "gan_train" and not obj.snapshot_every:
            raise ConfigError(f"{source}: key '{prefix}.quality_score': gan_train needs snapshot_every > 0 "
                              "(snapshots are what it scores)")
        if obj.quality_score == "gan_test" and obj.quality_features is None:
            raise ConfigError(f"{source}: key '{prefix}.quality_score': gan_test needs quality_features "
                              "'unet:RUN' (the real-trained U-net that segments the samples)")
        if obj.quality_features is not None and not obj.quality_features.startswith("unet:"):
            raise ConfigError(f"{source}: key '{prefix}.quality_features': expected 'unet:RUN', "
                              f"got {obj.quality_features!r}")
    if isinstance(obj, DPConfig):
        _check_dp(obj, prefix, source)
    if isinstance(obj, GANConfig) and obj.dp is not None:
        _check_dp_gan(obj, prefix, source)
    shape = obj.phantom_shape if isinstance(obj, StudyConfig) else None
    if shape is not None and (len(shape) != 3 or not all(8 <= n <= 1024 for n in shape)):
        raise ConfigError(f"{source}: key '{prefix}.phantom_shape': expected three sizes in [8, 1024], "
                          f"got {shape!r}")
    if isinstance(obj, StudyConfig) and obj.dp_epsilons:
        bad = [e for e in obj.dp_epsilons if not e > 0]
        if bad:
            raise ConfigError(f"{source}: key '{prefix}.dp_epsilons': every ε must be > 0 (.inf = no DP), "
                              f"got {bad[0]!r}")
        if obj.kind != "anonymization":
            raise ConfigError(f"{source}: key '{prefix}.dp_epsilons': the privacy-utility study is an "
                              f"anonymization study, not {obj.kind!r}")
        if len(set(obj.dp_epsilons)) != len(obj.dp_epsilons):
            raise ConfigError(f"{source}: key '{prefix}.dp_epsilons': an ε is listed twice")
    if isinstance(obj, DataConfig) and obj.label_map is not None:
        bad = [v for v in obj.label_map.values() if v not in (0, 1)]
        if bad:
            raise ConfigError(f"{source}: key '{prefix}.label_map': targets must be 0 or 1, got {bad[0]}")


def _check_dp(dp: DPConfig, prefix: str, source: str) -> None:
    auto = dp.noise_multiplier == "auto"
    if isinstance(dp.noise_multiplier, str) and not auto:
        raise ConfigError(f"{source}: key '{prefix}.noise_multiplier': expected a number > 0 or 'auto', "
                          f"got {dp.noise_multiplier!r}")
    for key, value in (("noise_multiplier", None if auto else dp.noise_multiplier), ("l2_clip", dp.l2_clip),
                       ("target_epsilon", dp.target_epsilon)):
        if value is not None and value <= 0:
            raise ConfigError(f"{source}: key '{prefix}.{key}': must be > 0, got {value!r}")
    if not 0 < dp.delta < 1:
        raise ConfigError(f"{source}: key '{prefix}.delta': must be in (0, 1), got {dp.delta!r}")
    if auto and dp.planned_updates is None:  # its target_epsilon may come from study.dp_epsilons
        raise ConfigError(f"{source}: key '{prefix}.noise_multiplier': 'auto' needs planned_updates "
                          "(the critic updates the target ε must allow)")
    if not auto and dp.planned_updates is not None:
        raise ConfigError(f"{source}: key '{prefix}.planned_updates': only with noise_multiplier: auto")


def _check_dp_gan(g: GANConfig, prefix: str, source: str) -> None:
    """What a DP critic cannot have: batch statistics (they mix examples), and choices that
    read the private training patches outside the clipped, noised gradient."""
    if g.arch == "dcgan":
        raise ConfigError(f"{source}: key '{prefix}.dp': the DCGAN discriminator uses batch norm, whose "
                          "statistics mix examples; a DP critic needs arch wgan-gp or wgan-gp-sn")
    if g.label_threshold == "auto":
        raise ConfigError(f"{source}: key '{prefix}.label_threshold': 'auto' calibrates to the training "
                          "patches' vessel fraction, which is not differentially private; with dp give a number")
    if g.label_min_intensity == "auto":
        raise ConfigError(f"{source}: key '{prefix}.label_min_intensity': 'auto' is a quantile of the training "
                          "patches, which is not differentially private; with dp give a number")
    if g.snapshot_every and (g.quality_score == "gan_train" or g.quality_features is not None):
        raise ConfigError(f"{source}: key '{prefix}.quality_score': choosing a snapshot by a score on real "
                          "patches is not covered by the DP guarantee; with dp leave snapshots unscored")
    if g.label_teacher_steps:
        raise ConfigError(f"{source}: key '{prefix}.label_teacher_steps': the label teacher trains on the "
                          "training patches without DP, outside the guarantee; with dp leave it at 0")
    if g.strategy in ("mirrored", "multiworker"):
        raise ConfigError(f"{source}: key '{prefix}.strategy': DP training runs on one device "
                          f"(strategy auto or default), not {g.strategy!r}")


def study_gan_config(cfg: ExperimentConfig, arch: str) -> ExperimentConfig:
    """The config of one GAN of a study: its arch and its `study.gan_overrides`.

    Raises:
        ConfigError: an override names a setting the gan section does not have.
    """
    over = cfg.study.gan_overrides.get(arch, {})
    known = {f.name for f in dataclasses.fields(cfg.gan)} - {"arch"}
    unknown = sorted(set(over) - known)
    if unknown:
        raise ConfigError(f"study.gan_overrides.{arch}: unknown gan setting '{unknown[0]}'")
    merged = {**to_dict(cfg.gan), **over, "arch": arch}  # checked like the gan section itself
    return dataclasses.replace(cfg, gan=_build(GANConfig, merged, "gan", f"study.gan_overrides.{arch}"))


def arm_name(arch: str, epsilon: float | None = None) -> str:
    """A study arm's name: the GAN, with its target ε when it is trained with DP."""
    return arch if epsilon is None or epsilon == float("inf") else f"{arch}-dp{epsilon:g}"


def study_arms(cfg: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """Every GAN a study trains, by name: one per `study.gans`, or with `study.dp_epsilons`
    one per (GAN, ε) — ε = inf without DP, the others with gan.dp's settings (defaults when
    the gan section has none) and that target.

    Raises:
        ConfigError: an override or a DP arm the gan section cannot have.
    """
    if not cfg.study.dp_epsilons:
        return {arch: study_gan_config(cfg, arch) for arch in cfg.study.gans}
    arms = {}
    for arch in cfg.study.gans:
        base = study_gan_config(cfg, arch)
        for eps in cfg.study.dp_epsilons:
            if eps == float("inf"):
                arms[arm_name(arch)] = dataclasses.replace(base, gan=dataclasses.replace(base.gan, dp=None))
                continue
            dp = {**to_dict(base.gan.dp or DPConfig()), "target_epsilon": eps}
            merged = {**to_dict(base.gan), "dp": dp}
            arms[arm_name(arch, eps)] = dataclasses.replace(
                base, gan=_build(GANConfig, merged, "gan", f"study.dp_epsilons ({arch}, ε = {eps:g})"))
    return arms


def from_dict(mapping: dict | None, source: str = "<config>", cls=ExperimentConfig):
    """Builds a config object from a plain mapping (missing keys take defaults)."""
    return _build(cls, mapping or {}, "", source)


def load_config(path: str | Path | None, overrides: dict | None = None) -> ExperimentConfig:
    """Loads a YAML config (or the defaults when `path` is None) and applies overrides.

    A file may start from another: `extends: base.yaml` (a path relative to the file) takes
    every key of that file, then this file's keys over it, section by section (a list
    replaces the base's list, an empty mapping `{}` clears the base's); bases may extend
    further.

    Args:
        path: YAML file; None for the built-in defaults.
        overrides: nested mapping merged over the file (e.g. from CLI flags).

    Raises:
        ConfigError: unreadable file, unknown key, wrong type, out-of-range value, a missing
            or circular `extends`.
    """
    mapping: dict = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        mapping = _read_mapping(Path(path), ())
    if overrides:
        # the file must be valid on its own: a flag must not paper over a broken section
        # (e.g. `gan: [1, 2]` replaced wholesale by the mapping of --arch)
        from_dict(mapping, source)
        mapping = _merge(mapping, overrides)
    return from_dict(mapping, source)


EXTENDS = "extends"


def _read_mapping(path: Path, chain: tuple[Path, ...]) -> dict:
    """The mapping of one YAML file with its `extends` chain resolved (`chain`: the files
    that extend it, to refuse a cycle)."""
    source = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not a UTF-8 text file") from None
    try:
        mapping = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"{source}: not valid YAML{at}") from None
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    if EXTENDS not in mapping:
        return mapping
    base = mapping.pop(EXTENDS)
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{source}: {EXTENDS} must be the path of another config file, not {base!r}")
    base_path = path.parent / base
    here = (*chain, path.resolve())
    if base_path.resolve() in here:
        raise ConfigError(f"{source}: {EXTENDS} {base} is circular (it leads back to {base_path})")
    if not base_path.is_file():
        raise ConfigError(f"{source}: {EXTENDS} {base}: no such file {base_path}")
    return _extend(_read_mapping(base_path, here), mapping)


def _extend(base: dict, over: dict) -> dict:
    """`over` (a config file) over `base` (the file it extends): mappings merge key by key,
    except that an empty one replaces the base's (`gan_overrides: {}` means none)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _extend(out[k], v) if v and isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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


# Keys added after run folders and study stages were recorded under the older hashes:
# left out of `config_hash` while at these defaults, so an upgrade does not redo (or, for a
# U-net stage, delete and retrain) finished work whose config did not change.
LATER_DEFAULTS = {"GANConfig": {"dp": None, "label_blur": 0.0, "label_min_intensity": 0.0, "upsample": "transposed",
                                "label_head": "shared", "critic_layout": "mirror", "critic_reals": "fresh",
                                "collapse_similarity_ceiling": 0.5, "monitor_every": 1, "label_teacher_steps": 0,
                                "label_teacher_width": 0.25, "label_teacher_weight": 1.0, "lr_decay_from": None},
                  "StudyConfig": {"dp_epsilons": [], "phantom_shape": [128, 128, 64], "phantom_inflow_mm": 60.0,
                                  "phantom_fat": 0.78},
                  "DPConfig": {"planned_updates": None}}


def config_hash(cfg) -> str:
    """Stable hash of a config (section), for manifests and stage caching."""
    text = json.dumps(_hashed(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _hashed(obj):
    """`to_dict` of `obj` without the LATER_DEFAULTS keys that are at their default."""
    if dataclasses.is_dataclass(obj):
        later = LATER_DEFAULTS.get(type(obj).__name__, {})
        return {f.name: _hashed(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.name in later and getattr(obj, f.name) == later[f.name])}
    if isinstance(obj, (list, tuple)):
        return [_hashed(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _hashed(v) for k, v in obj.items()}
    return obj


def save_config(cfg, path: str | Path) -> None:
    """Writes the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
