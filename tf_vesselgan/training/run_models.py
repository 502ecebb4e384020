"""The models a GAN run hands out: generator.keras (saved when training ends, with its label
threshold and sampling settings in run.json), the generator restored from it or from the
latest checkpoint, and the critic restored for the privacy audit.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import tensorflow as tf

from tf_vesselgan.config import ExperimentConfig, GANConfig
from tf_vesselgan.errors import UserError
from tf_vesselgan.models.critic import build_critic
from tf_vesselgan.models.generator import build_generator
from tf_vesselgan.training.finalize import (LabelIntensityFloor, calibrate_threshold, finalize_generator, label_channel,
                                           label_floor_of, with_label_floor)
from tf_vesselgan.training.run_folder import load_run_config, read_status, write_status
from tf_vesselgan.training.snapshots import best_snapshot


def save_generator(source: keras.Model, g: GANConfig, seed: int, run: Path, real_fraction: float,
                    label_floor: float | None = None) -> None:
    """generator.keras: the best scored snapshot, else the sampling generator of `source`;
    its label threshold and sampling settings go to run.json."""
    best = best_snapshot(run, g.quality_score)
    if best is not None:
        gen = keras.models.load_model(str(run / best["file"]), compile=False)
        info = {"label_threshold": float(best["label_threshold"]), "best_snapshot": best["file"],
                "quality_score": g.quality_score, f"best_{g.quality_score}": float(best[g.quality_score]),
                "sample_bn": g.sample_bn, "ema_decay": g.ema_decay}
        if label_floor and not any(isinstance(layer, LabelIntensityFloor) for layer in gen.layers):
            gen = with_label_floor(gen, label_floor)  # the floor was added after this snapshot was saved
            info["label_min_intensity"] = label_floor
            if g.label_threshold == "auto":
                info["label_threshold"] = calibrate_threshold(label_channel(gen, seed=seed), real_fraction)
    else:
        gen, _, info = finalize_generator(source, g, seed, real_fraction, label_floor)
    tmp = Path(str(run / ".generator.keras.partial") + ".keras")
    gen.save(str(tmp))
    tmp.replace(run / "generator.keras")
    write_status(run, sampling=info, label_threshold=info["label_threshold"])


def restore_generator(run) -> tuple[keras.Model, ExperimentConfig]:
    """The trained generator of a run: generator.keras, else the latest checkpoint."""
    run = Path(run)
    cfg = load_run_config(run)
    status = read_status(run)
    final = run / "generator.keras"
    if final.exists():
        gen = keras.models.load_model(str(final), compile=False)
        thr = status.get("label_threshold", cfg.gan.label_threshold)
    else:
        latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
        if latest is None:
            raise UserError(f"{run} has no trained generator (no generator.keras, no checkpoint)")
        patch = _patch_size_of(run)
        raw = build_generator(cfg.gan.latent_dim, cfg.gan.width, patch, upsample=cfg.gan.upsample,
                              label_head=cfg.gan.label_head)
        key = "ema_generator" if cfg.gan.ema_decay else "generator"
        tf.train.Checkpoint(**{key: raw}).restore(latest).expect_partial()
        gen, thr, _ = finalize_generator(raw, cfg.gan, cfg.seed, status.get("real_label_fraction"),
                                         label_floor_of(cfg.gan, status))
    if thr == "auto":
        raise UserError(f"{run}: label threshold 'auto' was never calibrated (no finished generator)")
    return gen, dataclasses.replace(cfg, gan=dataclasses.replace(cfg.gan, label_threshold=float(thr)))


def _patch_size_of(run: Path) -> int:
    return int(read_status(run).get("patch_size", 96))


def restore_critic(run) -> keras.Model:
    """The critic/discriminator of a run's latest checkpoint (for the privacy audit's
    white-box attack; it is never exported or handed out)."""
    run = Path(run)
    cfg = load_run_config(run)
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        raise UserError(f"{run} has no checkpoint, so no critic to audit")
    critic = build_critic(cfg.gan.arch, cfg.gan.width, _patch_size_of(run), cfg.gan.minibatch_discrimination,
                          layout=cfg.gan.critic_layout)
    status = tf.train.Checkpoint(critic=critic).restore(latest)
    status.expect_partial().assert_existing_objects_matched()  # every critic weight came from the file
    return critic
