"""Setting up a differentially private GAN run (gan.dp): the noise calibrated to an ε
target, the critic updates a target allows, the run's secret noise seed, the Poisson-sampled
data with its accountant. The DP-SGD step and its accounting: `training/dp.py`.
"""
from __future__ import annotations

import dataclasses
import math
import secrets
from pathlib import Path

import numpy as np

from tf_vesselgan.config import ExperimentConfig, GANConfig
from tf_vesselgan.data.pipeline import labelled_patches
from tf_vesselgan.errors import UserError
from tf_vesselgan.training.dp import epsilon_spent, noise_for, poisson_batches, privacy_callback, steps_within
from tf_vesselgan.training.run_folder import read_status, write_status


def calibrated_dp_noise(cfg: ExperimentConfig, manifest: dict) -> ExperimentConfig:
    """`cfg` with gan.dp.noise_multiplier 'auto' replaced by the smallest σ that keeps
    gan.dp.planned_updates critic updates within the target ε at these patches' sampling
    probability (it depends on nothing private: batch size and patch count); recorded
    in the run's config.yaml as that number."""
    dp = cfg.gan.dp
    if dp is None or dp.noise_multiplier != "auto":
        return cfg
    if dp.target_epsilon is None:
        raise UserError("gan.dp.noise_multiplier: 'auto' needs a target_epsilon to calibrate to")
    n = manifest["counts"]["train"]
    if n < 1:
        raise UserError("gan.dp: no training patches")
    try:
        sigma = noise_for(dp.target_epsilon, min(1.0, cfg.gan.batch_size / n), dp.planned_updates, dp.delta)
    except ValueError as exc:  # a target no noise can meet: a config problem, not a crash
        raise UserError(f"gan.dp.noise_multiplier: auto: {exc}") from None
    dp = dataclasses.replace(dp, noise_multiplier=math.ceil(sigma * 1e6) / 1e6, planned_updates=None)  # never below
    return dataclasses.replace(cfg, gan=dataclasses.replace(cfg.gan, dp=dp))


def dp_steps_possible(g: GANConfig, manifest: dict) -> int | None:
    """The critic updates gan.dp.target_epsilon allows (None: no target); refuses (one
    line, before anything is written) a target that allows not even one step."""
    n = manifest["counts"]["train"]
    if n < 1:
        raise UserError("gan.dp: no training patches")
    if g.dp.target_epsilon is None:
        return None
    q = min(1.0, g.batch_size / n)
    allowed = steps_within(g.dp.target_epsilon, q, g.dp.noise_multiplier, g.dp.delta)
    if allowed < g.n_critic:
        one = epsilon_spent(q, g.dp.noise_multiplier, g.n_critic, g.dp.delta)
        raise UserError(f"gan.dp.target_epsilon {g.dp.target_epsilon:g} allows no training step (one step of "
                        f"{g.n_critic} critic updates spends ε = {one:.3g}); raise it or the noise_multiplier")
    return allowed


def dp_noise_seed(run: Path) -> int:
    """The secret seed of a DP run's noise and Poisson sampling: drawn from the OS once,
    kept in run.json for --resume. Whoever knows it can remove the noise: the run folder
    stays with the data (only exported generators leave)."""
    seed = read_status(run).get("dp_noise_seed")
    if seed is None:
        seed = secrets.randbits(62)
        write_status(run, dp_noise_seed=seed)
    return int(seed)


def dp_training(gan, patches_dir, g: GANConfig, manifest: dict, noise_seed: int, run: Path):
    """(Poisson-sampled dataset, steps per epoch, accountant callback) of a DP run; the
    callback is None when the ε target allows no further step."""
    n = manifest["counts"]["train"]
    q = min(1.0, g.batch_size / n)
    allowed = dp_steps_possible(g, manifest)
    done = int(gan.d_optimizer.iterations.numpy())
    if allowed is not None and done + g.n_critic > allowed:
        return None, 0, None
    images, labels = labelled_patches(patches_dir, n, "train", seed=0)
    label = labels.astype(np.float32) if g.label_coding == "unit" else 2.0 * labels.astype(np.float32) - 1.0
    pairs = np.stack([images.astype(np.float32), label], axis=-1)
    ds = poisson_batches(pairs, q, g.n_critic, noise_seed, first_step=done // g.n_critic)
    steps = g.steps_per_epoch or max(1, n // (g.batch_size * g.n_critic))  # one pass in expectation
    return ds, steps, privacy_callback(gan, g.dp, q, g.n_critic, lambda **kw: write_status(run, **kw), allowed)
