"""`vesselgan train-gan`: build the GAN in a strategy scope, stream patches, fit, checkpoint.

Run folder: config.yaml, versions.json, run.json, checkpoints/, tensorboard/,
history.csv, and generator.keras when training completes.
"""
from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import keras
import tensorflow as tf

from tf_vesselgan.config import ExperimentConfig, GANConfig
from tf_vesselgan.data.build import read_manifest
from tf_vesselgan.data.pipeline import make_dataset
from tf_vesselgan.models.critic import build_critic
from tf_vesselgan.models.generator import build_generator
from tf_vesselgan.training.callbacks import EpochCheckpoint, GANMonitor, SignalStop
from tf_vesselgan.training.gan import DCGAN, WGANGP
from tf_vesselgan.training.run_folder import prepare_run, write_status
from tf_vesselgan.training.strategy import make_strategy

PAPER_OPTIMIZERS = {"dcgan": (3e-4, 0.5, 0.999), "wgan-gp": (1e-4, 0.0, 0.9), "wgan-gp-sn": (1e-4, 0.0, 0.9)}


def build_gan(g: GANConfig, patch_size: int, seed: int, synchronized_bn: bool = False):
    """Builds and compiles the GAN described by `g` (call inside the strategy scope)."""
    generator = build_generator(g.latent_dim, g.width, patch_size, synchronized_bn=synchronized_bn)
    critic = build_critic(g.arch, g.width, patch_size, g.minibatch_discrimination, synchronized_bn=synchronized_bn)
    common = dict(latent_dim=g.latent_dim, seed=seed, label_threshold=g.label_threshold,
                  threshold_in_training=g.threshold_in_training)
    if g.arch == "dcgan":
        gan = DCGAN(generator, critic, label_smoothing=g.label_smoothing, feature_matching=g.feature_matching,
                    feature_matching_weight=g.feature_matching_weight, **common)
    else:
        gan = WGANGP(generator, critic, n_critic=g.n_critic, gp_weight=g.gp_weight, **common)
    lr, b1, b2 = PAPER_OPTIMIZERS[g.arch]
    b1 = g.beta_1 if g.beta_1 is not None else b1
    b2 = g.beta_2 if g.beta_2 is not None else b2
    gan.compile(d_optimizer=keras.optimizers.Adam(g.d_learning_rate or lr, b1, b2),
                g_optimizer=keras.optimizers.Adam(g.g_learning_rate or lr, b1, b2))
    return gan


def checkpoint_for(gan, epoch_var) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(generator=gan.generator, critic=gan.critic, d_optimizer=gan.d_optimizer,
                               g_optimizer=gan.g_optimizer, epoch=epoch_var)


def train_gan(patches_dir, out, cfg: ExperimentConfig, resume: bool = False, verbose: int | None = None) -> dict:
    """Trains one GAN; returns a summary dict (epochs done, seconds, interrupted signal).

    Raises:
        UserError: missing patches, existing run without --resume, bad config.
    """
    manifest = read_manifest(patches_dir)
    strategy = make_strategy(cfg.gan.strategy, cfg.gan.devices)  # multi-worker: before other TF ops
    chief, task = worker_role(strategy)
    if chief:
        run, cfg = prepare_run(out, cfg, resume, kind="gan")
    else:  # other workers write their (identical) checkpoints and events to a scratch folder
        run = Path(out).parent / f".{Path(out).name}.worker-{task}"
        shutil.rmtree(run, ignore_errors=True)
        run, cfg = prepare_run(run, cfg, False, kind="gan")
    g = cfg.gan
    size = manifest["patch_size"]
    replicas = strategy.num_replicas_in_sync
    keras.utils.set_random_seed(cfg.seed)  # initial weights follow the seed too
    with strategy.scope():
        gan = build_gan(g, size, cfg.seed, synchronized_bn=replicas > 1)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    ckpt = checkpoint_for(gan, epoch_var)
    manager = tf.train.CheckpointManager(ckpt, str(run / "checkpoints"), max_to_keep=g.keep_checkpoints)
    latest = tf.train.latest_checkpoint(str(Path(out) / "checkpoints")) if resume else None
    if latest:  # every worker restores the chief's checkpoint
        ckpt.restore(latest).assert_existing_objects_matched()
    initial_epoch = int(epoch_var.numpy())
    if initial_epoch >= g.epochs:
        write_status(run, state="complete", epochs_done=initial_epoch)
        _save_generator(gan, run)
        return {"epochs_done": initial_epoch, "seconds": 0.0, "interrupted": None, "run": str(run)}

    per_step = g.batch_size * (g.n_critic if g.arch != "dcgan" else 1)
    ds = make_dataset(patches_dir, "train", batch_size=per_step, mode="gan", shuffle=True, seed=cfg.seed,
                      repeat=g.steps_per_epoch is not None)
    # Workers read the same global batches and take their rows (not whole files), so a
    # multi-worker step sees exactly the data of a single-device step.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(options)
    if g.steps_per_epoch is None and manifest["counts"]["train"] < per_step:
        from tf_vesselgan.errors import UserError

        raise UserError(f"{manifest['counts']['train']} training patches are fewer than one step needs ({per_step}); lower gan.batch_size")
    stopper = SignalStop()
    hparams = {"arch": g.arch, "width": g.width, "batch_size": g.batch_size, "latent_dim": g.latent_dim,
               "n_critic": g.n_critic, "gp_weight": g.gp_weight, "seed": cfg.seed, "replicas": replicas}
    callbacks = [
        stopper,
        EpochCheckpoint(manager, epoch_var, g.checkpoint_every),
        GANMonitor(str(run / "tensorboard"), hparams, g.image_grid, cfg.seed),
        keras.callbacks.CSVLogger(str(run / "history.csv"), append=resume),
    ]
    write_status(run, kind="gan", arch=g.arch, state="running", patch_size=size, patches_config_hash=manifest["config_hash"])
    t0 = time.perf_counter()
    if verbose is None:
        import sys

        verbose = 1 if sys.stderr.isatty() else 2
    gan.fit(ds, epochs=g.epochs, initial_epoch=initial_epoch, steps_per_epoch=g.steps_per_epoch,
            callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - t0
    done = int(epoch_var.numpy())
    if stopper.received is not None:
        manager.save(checkpoint_number=done)  # weights of the partial epoch; it is redone on resume
        write_status(run, state="interrupted", epochs_done=done)
        return {"epochs_done": done, "seconds": seconds, "interrupted": signal.Signals(stopper.received).name,
                "run": str(run)}
    if done % g.checkpoint_every:
        manager.save(checkpoint_number=done)
    _save_generator(gan, run)
    write_status(run, state="complete", epochs_done=done)
    if not chief:
        shutil.rmtree(run, ignore_errors=True)
        run = Path(out)
    return {"epochs_done": done, "seconds": seconds, "interrupted": None, "run": str(run)}


def worker_role(strategy) -> tuple[bool, int]:
    """(is this the chief, task index): the chief owns the run folder in multi-worker training."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return True, 0
    kind, index = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return (kind == "chief" or (kind == "worker" and index == 0 and not has_chief)), index


def _save_generator(gan, run: Path) -> None:
    tmp = run / ".generator.keras.partial"
    gan.generator.save(str(tmp) + ".keras")
    Path(str(tmp) + ".keras").replace(run / "generator.keras")


def restore_generator(run) -> tuple[keras.Model, ExperimentConfig]:
    """The trained generator of a run: generator.keras, else the latest checkpoint."""
    from tf_vesselgan.errors import UserError
    from tf_vesselgan.training.run_folder import load_run_config

    run = Path(run)
    cfg = load_run_config(run)
    final = run / "generator.keras"
    if final.exists():
        return keras.models.load_model(str(final), compile=False), cfg
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        raise UserError(f"{run} has no trained generator (no generator.keras, no checkpoint)")
    patch = _patch_size_of(run)
    gen = build_generator(cfg.gan.latent_dim, cfg.gan.width, patch)
    tf.train.Checkpoint(generator=gen).restore(latest).expect_partial()
    return gen, cfg


def _patch_size_of(run: Path) -> int:
    import json

    status = json.loads((run / "run.json").read_text())
    return int(status.get("patch_size", 96))


def restore_critic(run) -> keras.Model:
    """The critic/discriminator of a run's latest checkpoint (for the privacy audit's
    white-box attack; it is never exported or handed out)."""
    from tf_vesselgan.errors import UserError
    from tf_vesselgan.training.run_folder import load_run_config

    run = Path(run)
    cfg = load_run_config(run)
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        raise UserError(f"{run} has no checkpoint, so no critic to audit")
    critic = build_critic(cfg.gan.arch, cfg.gan.width, _patch_size_of(run), cfg.gan.minibatch_discrimination)
    status = tf.train.Checkpoint(critic=critic).restore(latest)
    status.expect_partial().assert_existing_objects_matched()  # every critic weight came from the file
    return critic
