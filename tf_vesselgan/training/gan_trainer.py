"""`vesselgan train-gan`: build the GAN in a strategy scope, stream patches, fit, checkpoint.

Run folder: config.yaml, versions.json, run.json, checkpoints/, tensorboard/,
history.csv, and generator.keras when training completes.
"""
from __future__ import annotations

import dataclasses
import shutil
import signal
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from tf_vesselgan.config import ExperimentConfig, GANConfig
from tf_vesselgan.data.build import read_manifest
from tf_vesselgan.data.pipeline import image_channels, labelled_patches, make_dataset
from tf_vesselgan.errors import UserError
from tf_vesselgan.models import critic as critic_model
from tf_vesselgan.models import generator as generator_model
from tf_vesselgan.models.critic import build_critic
from tf_vesselgan.models.generator import build_generator
from tf_vesselgan.training.budget import BudgetStop, LearningRateDecay
from tf_vesselgan.training.callbacks import EpochCheckpoint, GANMonitor, HistoryCSV, SignalStop
from tf_vesselgan.training.dp_run import calibrated_dp_noise, dp_noise_seed, dp_steps_possible, dp_training
from tf_vesselgan.training.ema import GeneratorEMA
from tf_vesselgan.training.finalize import label_floor_of, real_label_floor, real_label_fraction
from tf_vesselgan.training.gan import DCGAN, DPWGANGP, WGANGP
from tf_vesselgan.training.run_folder import config_changes, has_status, prepare_run, read_status, write_status
from tf_vesselgan.training.run_models import save_generator
from tf_vesselgan.training.snapshots import FIDScore, GANTestScore, GANTrainScore, Snapshots, check_quality_unet
from tf_vesselgan.training.strategy import in_multi_worker_mode, make_strategy

PAPER_OPTIMIZERS = {"dcgan": (3e-4, 0.5, 0.999), "wgan-gp": (1e-4, 0.0, 0.9), "wgan-gp-sn": (1e-4, 0.0, 0.9)}


def build_gan(g: GANConfig, patch_size: int, seed: int, synchronized_bn: bool = False, dp_noise_seed: int = 0):
    """Builds and compiles the GAN described by `g` (call inside the strategy scope); with
    `g.dp` a DP-SGD critic whose noise is seeded by `dp_noise_seed` (keep it secret)."""
    generator = build_generator(g.latent_dim, g.width, patch_size, synchronized_bn=synchronized_bn,
                                upsample=g.upsample, label_head=g.label_head)
    critic = build_critic(g.arch, g.width, patch_size, g.minibatch_discrimination, synchronized_bn=synchronized_bn,
                          layout=g.critic_layout)
    stl = g.label_threshold if g.threshold_in_training else 0.8  # only the STE option reads it
    common = dict(latent_dim=g.latent_dim, seed=seed, label_threshold=stl,
                  threshold_in_training=g.threshold_in_training, diff_augment=g.diff_augment,
                  label_coding=g.label_coding,
                  label_teacher_weight=g.label_teacher_weight if g.label_teacher_steps else 0.0)
    if g.dp is not None:
        gan = DPWGANGP(generator, critic, n_critic=g.n_critic, gp_weight=g.gp_weight, l2_clip=g.dp.l2_clip,
                       noise_multiplier=g.dp.noise_multiplier, expected_batch=g.batch_size,
                       noise_seed=dp_noise_seed, **common)
    elif g.arch == "dcgan":
        gan = DCGAN(generator, critic, label_smoothing=g.label_smoothing, feature_matching=g.feature_matching,
                    feature_matching_weight=g.feature_matching_weight, **common)
    else:
        gan = WGANGP(generator, critic, n_critic=g.n_critic, gp_weight=g.gp_weight,
                     reuse_reals=g.critic_reals == "reuse", **common)
    _, b1, b2 = PAPER_OPTIMIZERS[g.arch]
    b1 = g.beta_1 if g.beta_1 is not None else b1
    b2 = g.beta_2 if g.beta_2 is not None else b2
    d_lr, g_lr = learning_rates(g)
    gan.compile(d_optimizer=keras.optimizers.Adam(d_lr, b1, b2), g_optimizer=keras.optimizers.Adam(g_lr, b1, b2))
    return gan


def learning_rates(g: GANConfig) -> tuple[float, float]:
    """The (critic, generator) learning rates before any decay: the config's, else the paper's."""
    lr = PAPER_OPTIMIZERS[g.arch][0]
    return g.d_learning_rate or lr, g.g_learning_rate or lr


def build_ema_generator(gan, g: GANConfig, patch_size: int, synchronized_bn: bool = False):
    """The weight-averaged copy of the generator (None when gan.ema_decay is 0)."""
    if not g.ema_decay:
        return None
    ema = build_generator(g.latent_dim, g.width, patch_size, synchronized_bn=synchronized_bn, name="ema_generator",
                          upsample=g.upsample, label_head=g.label_head)
    ema.set_weights(gan.generator.get_weights())
    return ema


def checkpoint_for(gan, epoch_var, ema_generator=None) -> tf.train.Checkpoint:
    parts = dict(generator=gan.generator, critic=gan.critic, d_optimizer=gan.d_optimizer,
                 g_optimizer=gan.g_optimizer, epoch=epoch_var)
    if ema_generator is not None:
        parts["ema_generator"] = ema_generator
    return tf.train.Checkpoint(**parts)


# What a GAN run may change on --resume: how long it trains and what it records. Anything
# else under gan (architecture, width, batch size, losses, optimiser, sampling), the seed or
# the patches would silently continue a different model from the old weights.
RESUMABLE_GAN_KEYS = ("epochs", "max_seconds", "snapshot_every", "checkpoint_every", "keep_checkpoints", "image_grid",
                      "quality_score", "quality_features", "quality_samples", "quality_unet_width",
                      "quality_unet_steps", "collapse_std_floor", "collapse_similarity_ceiling", "monitor_every",
                      "dp.target_epsilon", "label_min_intensity")


def check_resumable(run, cfg: ExperimentConfig, manifest: dict) -> None:
    """Refuses (one line) a resume whose config or patches differ from the run's in a way
    that changes the model; keys of other stages (unet, study, name) do not matter here."""
    run = Path(run)
    if not (run / "config.yaml").exists():
        return  # prepare_run names that problem
    for key, (old, new) in config_changes(run, cfg).items():
        if key == "seed" or (key.startswith("gan.") and key[4:] not in RESUMABLE_GAN_KEYS):
            raise UserError(f"--resume: {run} was trained with {key} = {old!r}, not {new!r}; only "
                            f"gan.{{{','.join(RESUMABLE_GAN_KEYS[:2])}}} and what is recorded may change on "
                            "resume (start a new run folder to change the model)")
    recorded = read_status(run).get("patches_config_hash") if has_status(run) else None
    if recorded is not None and recorded != manifest["config_hash"]:
        raise UserError(f"--resume: {run} was trained on other patches (config hash {recorded}, these are "
                        f"{manifest['config_hash']})")


@dataclasses.dataclass
class _Training:
    """One GAN run being trained: its folder, config, models and checkpoint state."""

    run: Path
    cfg: ExperimentConfig
    chief: bool
    replicas: int
    gan: keras.Model
    ema: keras.Model | None
    epoch_var: tf.Variable
    manager: tf.train.CheckpointManager
    initial_epoch: int
    real_fraction: float
    noise_seed: int
    label_floor: float | None = None

    def sampler(self) -> keras.Model:
        """The generator that samples: the weight average when there is one."""
        return self.ema if self.ema is not None else self.gan.generator

    def result(self, done: int, seconds: float = 0.0, interrupted: str | None = None) -> dict:
        return {"epochs_done": done, "seconds": seconds, "interrupted": interrupted, "run": str(self.run)}

    def complete(self, done: int, **status) -> dict:
        """Saves the run's generator, then marks the run complete."""
        save_generator(self.sampler(), self.cfg.gan, self.cfg.seed, self.run, self.real_fraction, self.label_floor)
        write_status(self.run, state="complete", epochs_done=done, **status)
        return self.result(done)


def train_gan(patches_dir, out, cfg: ExperimentConfig, resume: bool = False, verbose: int | None = None) -> dict:
    """Trains one GAN; returns a summary dict (epochs done, seconds, interrupted signal).

    Raises:
        UserError: missing patches, existing run without --resume, bad config.
    """
    manifest = read_manifest(patches_dir)
    cfg = calibrated_dp_noise(cfg, manifest)
    strategy = _checked_strategy(out, cfg, resume, manifest)
    t = _restore(patches_dir, out, cfg, resume, strategy, manifest)
    clock, budget_left = _clock_at(read_status(t.run), t.initial_epoch, t.cfg.gan.max_seconds)
    if t.initial_epoch >= t.cfg.gan.epochs or not budget_left:
        return t.complete(t.initial_epoch)
    if t.cfg.gan.dp is not None:
        ds, steps, accountant = dp_training(t.gan, patches_dir, t.cfg.gan, manifest, t.noise_seed, t.run)
        if accountant is None:  # the ε target allows no further step
            return t.complete(t.initial_epoch, epsilon_exhausted=True)
    else:
        ds, steps, accountant = _training_dataset(patches_dir, t.cfg.gan, t.cfg.seed, manifest), \
            t.cfg.gan.steps_per_epoch, None
    return _fit(t, ds, steps, accountant, clock, patches_dir, manifest, resume, verbose, out)


def check_gan(g: GANConfig, patch_size: int) -> None:
    """UserError (one line, before anything is written) if this GAN cannot train on
    patches of this size."""
    if g.dp is not None and g.critic_reals == "reuse":
        raise UserError("gan.critic_reals: reuse cannot be used with gan.dp (every DP critic update needs its own "
                        "Poisson sample)")
    try:
        generator_model.check_patch_size(patch_size)
        critic_model.check_patch_size(g.arch, patch_size, g.minibatch_discrimination, g.critic_layout)
    except ValueError as exc:
        raise UserError(f"gan.arch {g.arch}: {exc}") from None


def _checked_strategy(out, cfg: ExperimentConfig, resume: bool, manifest: dict):
    """The distribution strategy, after every check that must pass before a file is written."""
    check_gan(cfg.gan, manifest["patch_size"])
    if resume:
        check_resumable(out, cfg, manifest)
    if cfg.gan.quality_features:
        check_quality_unet(cfg.gan.quality_features[5:])
    strategy = make_strategy(cfg.gan.strategy, cfg.gan.devices)  # multi-worker: before other TF ops
    if cfg.gan.dp is not None:
        if strategy.num_replicas_in_sync > 1:
            raise UserError(f"gan.dp: DP training runs on one device, this strategy has "
                            f"{strategy.num_replicas_in_sync} replicas (set gan.strategy: default)")
        dp_steps_possible(cfg.gan, manifest)
    else:
        check_training_patches(cfg.gan, manifest)
    return strategy


def _restore(patches_dir, out, cfg: ExperimentConfig, resume: bool, strategy, manifest: dict) -> _Training:
    """Opens the run folder, builds the models in the strategy's scope and restores the
    latest checkpoint on resume."""
    chief, task = worker_role(strategy)
    run, cfg = _open_run(out, cfg, resume, chief, task)
    g, size, replicas = cfg.gan, manifest["patch_size"], strategy.num_replicas_in_sync
    keras.utils.set_random_seed(cfg.seed)  # initial weights follow the seed too
    noise_seed = dp_noise_seed(run) if g.dp is not None else 0
    with strategy.scope():
        gan = build_gan(g, size, cfg.seed, synchronized_bn=replicas > 1, dp_noise_seed=noise_seed)
        ema = build_ema_generator(gan, g, size, synchronized_bn=replicas > 1)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    ckpt = checkpoint_for(gan, epoch_var, ema)
    manager = tf.train.CheckpointManager(ckpt, str(run / "checkpoints"), max_to_keep=g.keep_checkpoints)
    latest = tf.train.latest_checkpoint(str(Path(out) / "checkpoints")) if resume else None
    if latest:  # every worker restores the chief's checkpoint
        ckpt.restore(latest).assert_existing_objects_matched()
    real_fraction = read_status(run).get("real_label_fraction")
    if real_fraction is None:
        real_fraction = real_label_fraction(patches_dir)
        write_status(run, real_label_fraction=real_fraction)
    if g.label_min_intensity == "auto" and read_status(run).get("real_label_floor") is None:
        write_status(run, real_label_floor=real_label_floor(patches_dir))
    if g.label_teacher_steps:
        gan.set_label_teacher(label_teacher(run, patches_dir, cfg, manifest, chief))
    return _Training(run, cfg, chief, replicas, gan, ema, epoch_var, manager, int(epoch_var.numpy()), real_fraction,
                     noise_seed, label_floor_of(g, read_status(run)))


def label_teacher(run: Path, patches_dir, cfg: ExperimentConfig, manifest: dict, chief: bool) -> keras.Model:
    """The run's frozen label teacher (gan.label_teacher_steps): teacher.keras when an earlier
    session trained it, else a U-net trained now on all real training pairs, its cost
    added to the run's clock (it is spent from gan.max_seconds) before the first epoch."""
    from tf_vesselgan.training.budget import MachineClock
    from tf_vesselgan.training.snapshots import train_small_unet

    path = run / "teacher.keras"
    if path.exists():
        return keras.models.load_model(str(path), compile=False)
    g = cfg.gan
    clock = MachineClock()
    images, labels = labelled_patches(patches_dir, manifest["counts"]["train"], "train", seed=cfg.seed)
    teacher = train_small_unet(images, labels, g.label_teacher_width, g.label_teacher_steps, cfg.unet.learning_rate,
                               cfg.seed)
    if chief:
        tmp = run / ".teacher.partial.keras"
        teacher.save(str(tmp))
        tmp.replace(path)
        spent = {"machine_seconds": clock.machine(), "wall_seconds": clock.wall()}
        write_status(run, label_teacher_seconds=spent, clock={"0": spent}, **spent)
    return teacher


def _fit(t: _Training, ds, steps_per_epoch, accountant, clock: dict, patches_dir, manifest: dict, resume: bool,
         verbose: int | None, out) -> dict:
    """Fits from the restored epoch to the end, the budget or a signal; saves accordingly."""
    g, run = t.cfg.gan, t.run
    stopper = SignalStop()

    def persist_clock(epoch, machine, wall):
        clocks = read_status(run).get("clock", {})
        clocks[str(epoch)] = {"machine_seconds": machine, "wall_seconds": wall}
        write_status(run, clock=clocks, machine_seconds=machine, wall_seconds=wall)

    budget = BudgetStop((clock["machine_seconds"], clock["wall_seconds"]), g.max_seconds,
                        persist_clock if t.chief else None)
    snapshots = Snapshots(run, t.sampler, g, t.cfg.seed, t.real_fraction, label_floor=t.label_floor,
                          clock=budget.totals, scorer=snapshot_scorer(t.cfg, patches_dir, manifest))
    decay = [] if g.lr_decay_from is None else [
        LearningRateDecay(list(zip((t.gan.d_optimizer, t.gan.g_optimizer), learning_rates(g))), g.lr_decay_from,
                          g.epochs, g.max_seconds, lambda: budget.totals()[0])]
    callbacks = [stopper, budget, *decay, *([accountant] if accountant else []),
                 *_monitoring(t.gan, t.ema, t.cfg, run, t.replicas, snapshots, resume,
                              EpochCheckpoint(t.manager, t.epoch_var, g.checkpoint_every,
                                              interrupted=lambda: stopper.received is not None))]
    if resume:
        _drop_history_from(run / "history.csv", t.initial_epoch)
    write_status(run, kind="gan", arch=g.arch, state="running", patch_size=manifest["patch_size"],
                 patches_config_hash=manifest["config_hash"])
    t0 = time.perf_counter()
    verbose = (1 if sys.stderr.isatty() else 2) if verbose is None else verbose
    try:
        t.gan.fit(ds, epochs=g.epochs, initial_epoch=t.initial_epoch, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, verbose=verbose)
    except Exception:  # e.g. a full disk: no half-written checkpoint or snapshot is left behind
        remove_partials(run)
        raise
    seconds = time.perf_counter() - t0
    done = int(t.epoch_var.numpy())
    if stopper.received is not None:
        t.manager.save(checkpoint_number=done)  # weights of the partial epoch; it is redone on resume
        if t.chief:  # those weights cost the partial epoch's time too
            persist_clock(done, *budget.totals())
        write_status(run, state="interrupted", epochs_done=done)
        return t.result(done, seconds, signal.Signals(stopper.received).name)
    if done % g.checkpoint_every:
        t.manager.save(checkpoint_number=done)
    t.complete(done, budget_exhausted=budget.exhausted,
               **({"epsilon_exhausted": accountant.exhausted} if accountant else {}))
    if not t.chief:
        shutil.rmtree(run, ignore_errors=True)
        t.run = Path(out)
    return t.result(done, seconds)


def gan_hparams(cfg: ExperimentConfig, replicas: int) -> dict:
    """TensorBoard's hparams of a GAN run: every scalar gan key (a list as text, the DP
    keys as dp.*; unset keys left out), the seed and the replica count."""
    flat = {"seed": cfg.seed, "replicas": replicas}
    for f in dataclasses.fields(cfg.gan):
        v = getattr(cfg.gan, f.name)
        if dataclasses.is_dataclass(v):
            flat.update({f"dp.{k}": x for k, x in dataclasses.asdict(v).items() if x is not None})
        elif isinstance(v, (list, tuple)):
            flat[f.name] = ",".join(map(str, v))
        elif v is not None:
            flat[f.name] = v
    return flat


def _monitoring(gan, ema, cfg: ExperimentConfig, run: Path, replicas: int, snapshots, resume: bool,
                checkpoint) -> list:
    """Weight average, snapshots, TensorBoard, history.csv and the checkpoint, in that order."""
    g = cfg.gan
    out = []
    if ema is not None:
        out.append(GeneratorEMA(gan.generator, ema, g.ema_decay, lambda: gan.g_optimizer.iterations))
    # the checkpoint last: an epoch counts as done only once its history row is written, so
    # a kill in between redoes (and logs once) the epoch instead of losing its row
    return out + [snapshots,
                  GANMonitor(str(run / "tensorboard"), gan_hparams(cfg, replicas), g.image_grid, cfg.seed,
                             sampler=lambda: snapshots.current),
                  HistoryCSV(run / "history.csv", append=resume), checkpoint]


def _open_run(out, cfg: ExperimentConfig, resume: bool, chief: bool, task: int) -> tuple[Path, ExperimentConfig]:
    """The run folder: the chief's, or for other workers a scratch folder for their
    (identical) checkpoints and events."""
    if chief:
        return prepare_run(out, cfg, resume, kind="gan")
    run = Path(out).parent / f".{Path(out).name}.worker-{task}"
    shutil.rmtree(run, ignore_errors=True)
    return prepare_run(run, cfg, False, kind="gan")


def _clock_at(status: dict, epoch: int, max_seconds: float | None) -> tuple[dict, bool]:
    """(machine/wall seconds spent before `epoch`, whether the budget holds one more epoch
    — its cost known from the previous one, the same rule BudgetStop applied when it
    stopped: the first epoch's cost is its whole clock)."""
    clocks = {"0": {"machine_seconds": 0.0, "wall_seconds": 0.0}, **status.get("clock", {})}
    clock = clocks.get(str(epoch), clocks["0"])
    previous = clocks.get(str(epoch - 1))
    estimate = clock["machine_seconds"] - previous["machine_seconds"] if previous else 0.0
    return clock, max_seconds is None or clock["machine_seconds"] + estimate < max_seconds


def _training_dataset(patches_dir, g: GANConfig, seed: int, manifest: dict) -> tf.data.Dataset:
    """Batches of real pairs for one step (n_critic batches for a WGAN with fresh critic
    reals), labels coded as the critic sees them."""
    per_step = _pairs_per_step(g)
    ds = make_dataset(patches_dir, "train", batch_size=per_step, mode="gan", shuffle=True, seed=seed,
                      repeat=g.steps_per_epoch is not None)
    ds = label_coded(ds, g.label_coding)
    # Workers read the same global batches and take their rows (not whole files), so a
    # multi-worker step sees exactly the data of a single-device step.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _pairs_per_step(g: GANConfig) -> int:
    """Real pairs one training step reads (n_critic batches for a WGAN with fresh critic reals)."""
    return g.batch_size * (g.n_critic if g.arch != "dcgan" and g.critic_reals == "fresh" else 1)


def check_training_patches(g: GANConfig, manifest: dict) -> None:
    """UserError (one line, before anything is written) if an epoch over the training
    patches, read once without repeating, could not fill a single step."""
    per_step = _pairs_per_step(g)
    if g.steps_per_epoch is None and manifest["counts"]["train"] < per_step:
        raise UserError(f"{manifest['counts']['train']} training patches are fewer than one step needs "
                        f"({per_step}); lower gan.batch_size")


def label_coded(ds: tf.data.Dataset, coding: str) -> tf.data.Dataset:
    """Real pairs as the critic sees them: labels {0, 1} ("unit") or {-1, 1} ("signed")."""
    if coding == "unit":
        return ds
    return ds.map(lambda pair: tf.concat([pair[..., :1], 2.0 * pair[..., 1:] - 1.0], axis=-1))


def snapshot_scorer(cfg: ExperimentConfig, patches_dir, manifest: dict):
    """The `gan.quality_score` of a snapshot as a callable, or None when unscored."""
    g = cfg.gan
    if g.quality_score == "gan_train":
        split = "val" if manifest["counts"].get("val", 0) > 0 else "train"
        return GANTrainScore(lambda: labelled_patches(patches_dir, g.quality_samples, split, seed=cfg.seed),
                             g.quality_samples, cfg.seed, g.quality_unet_width, g.quality_unet_steps,
                             cfg.unet.learning_rate)
    if g.quality_features is None:
        return None
    if g.quality_score == "gan_test":
        return GANTestScore(g.quality_features[5:], g.quality_samples, cfg.seed)
    return FIDScore(g.quality_features[5:], lambda: image_channels(patches_dir, g.quality_samples, seed=cfg.seed),
                    g.quality_samples, cfg.seed)


def remove_partials(run: Path) -> None:
    """Deletes what an interrupted write leaves in a run folder: TF's `ckpt-N_temp`
    checkpoint folders and our `.….partial` files."""
    for p in list((run / "checkpoints").glob("*_temp*")) + list(run.glob(".*.partial*")) + \
            list((run / "snapshots").glob(".*.partial*")):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _drop_history_from(path: Path, epoch: int) -> None:
    """Removes history.csv rows of epochs ≥ `epoch` (0-based, as HistoryCSV writes them):
    an interrupted epoch is redone on resume and must not be logged twice."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [ln for ln in lines[1:] if ln.split(",", 1)[0].isdigit() and int(ln.split(",", 1)[0]) < epoch]
    path.write_text("".join(kept))


def worker_role(strategy) -> tuple[bool, int]:
    """(is this the chief, task index): the chief owns the run folder in multi-worker training."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not in_multi_worker_mode(strategy):
        return True, 0
    kind, index = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return (kind == "chief" or (kind == "worker" and index == 0 and not has_chief)), index
