"""Training callbacks: TensorBoard scalars/images/hparams, history.csv, checkpoints, step
time, signals."""
from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_vesselgan.training.snapshots import QUALITY_KEYS
from tf_vesselgan.utils.grids import pair_grid


def _scalar_name(key: str) -> str:
    if "loss" in key or key in ("gradient_penalty", "wasserstein", "feature_matching"):
        return f"loss/{key}"
    if key.endswith("_seconds"):
        return f"time/{key}"
    if key == "learning_rate_factor":
        return f"optimizer/{key}"
    if key in QUALITY_KEYS:
        return f"quality/{key}"
    return f"critic/{key}"


class HistoryCSV(keras.callbacks.Callback):
    """history.csv, one row per epoch: `epoch`, then the epoch logs' scalar keys (sorted).

    Unlike Keras' CSVLogger, columns stay aligned across resumes: when an epoch logs a key
    the file has no column for (a run resumed by a version that logs a new metric), the
    file is rewritten with the new column, "NA" in the earlier rows; a key an epoch does
    not log is "NA" in its row. Without `append` an existing file is replaced.
    """

    def __init__(self, path, append: bool = False):
        super().__init__()
        self.path = Path(path)
        self.append = append
        self.fields: list[str] | None = None

    def on_train_begin(self, logs=None):
        self.fields = None
        if self.append and self.path.exists():
            with open(self.path, newline="") as f:
                self.fields = next(csv.reader(f), None)
        elif self.path.exists():
            self.path.unlink()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        for k, v in sorted((logs or {}).items()):
            v = np.asarray(v)
            if v.size == 1 and np.issubdtype(v.dtype, np.number):
                row[k] = float(v)
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        new = [k for k in row if k not in self.fields]
        if new:
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            self.fields += new
            tmp = self.path.with_name(self.path.name + ".partial")
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields, restval="NA")
                w.writeheader()
                w.writerows(rows)
            os.replace(tmp, self.path)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, restval="NA").writerow(row)


class GANMonitor(keras.callbacks.Callback):
    """Writes per-epoch scalars (losses, learning rates, step time) and a fixed-noise image grid."""

    def __init__(self, logdir: str, hparams: dict, n_images: int = 16, seed: int = 0, sampler=None):
        """`sampler`: callable → (generator, label threshold) to draw the image grid from
        (the run's sampling generator); None = the training generator in eval mode."""
        super().__init__()
        self.sampler = sampler
        self.writer = tf.summary.create_file_writer(logdir)
        self.hparams = hparams
        self.n_images = n_images
        self.seed = seed
        self._t = 0.0
        self._times: list[float] = []

    def on_train_begin(self, logs=None):
        from tensorboard.plugins.hparams import api as hp

        with self.writer.as_default():
            hp.hparams({k: v for k, v in self.hparams.items() if isinstance(v, (int, float, str, bool))})
        self.writer.flush()

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._times.append(time.perf_counter() - self._t)

    def on_epoch_end(self, epoch, logs=None):
        gan = self.model
        step = epoch + 1
        with self.writer.as_default():
            for k, v in (logs or {}).items():
                tf.summary.scalar(_scalar_name(k), float(v), step=step)
            tf.summary.scalar("optimizer/d_learning_rate", float(keras.ops.convert_to_numpy(gan.d_optimizer.learning_rate)), step=step)
            tf.summary.scalar("optimizer/g_learning_rate", float(keras.ops.convert_to_numpy(gan.g_optimizer.learning_rate)), step=step)
            if self._times:
                # the first step of a run includes tracing; report the median
                tf.summary.scalar("time/step_seconds", float(np.median(self._times)), step=step)
            current = self.sampler() if self.sampler is not None else None
            # with a sampler, an epoch without a sampling generator (gan.monitor_every) has no grid
            if self.n_images and (current is not None or self.sampler is None):
                z = tf.random.stateless_normal([self.n_images, gan.latent_dim], seed=[self.seed, 7])
                if current is None:
                    pairs = gan.generator(z, training=False).numpy()
                else:
                    generator, threshold = current
                    pairs = generator(z, training=False).numpy()
                    pairs[..., 1] = pairs[..., 1] > threshold
                tf.summary.image("samples/fixed_noise_pairs", pair_grid(pairs)[None], step=step)
        self.writer.flush()
        self._times = []


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a tf.train checkpoint (models, optimizers, epoch) every `every` epochs; an
    epoch that `interrupted()` says was cut short (a signal mid-epoch) is not counted."""

    def __init__(self, manager: tf.train.CheckpointManager, epoch_var: tf.Variable, every: int = 1,
                 interrupted=lambda: False):
        super().__init__()
        self.manager = manager
        self.epoch_var = epoch_var
        self.every = every
        self.interrupted = interrupted

    def on_epoch_end(self, epoch, logs=None):
        if self.interrupted():
            return  # an interrupted epoch is not complete; the trainer saves separately
        self.epoch_var.assign(epoch + 1)
        if (epoch + 1) % self.every == 0:
            self.manager.save(checkpoint_number=epoch + 1)


class SignalStop(keras.callbacks.Callback):
    """On SIGTERM/SIGINT: finish the current step, stop training, let the trainer save."""

    def __init__(self):
        super().__init__()
        self.received: int | None = None
        self._old = {}

    def _handler(self, signum, frame):
        self.received = signum

    def on_train_begin(self, logs=None):
        for s in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[s] = signal.signal(s, self._handler)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        for s, old in self._old.items():
            signal.signal(s, old)
