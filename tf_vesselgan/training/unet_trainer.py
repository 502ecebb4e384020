"""`vesselgan train-unet`: the half U-net on real patches, synthetic pairs, or both.

Run folder: config.yaml, versions.json, run.json (train kind, normalisation and its
statistics, patch size, the patches' patient split), unet.keras (best validation
Dice), history.csv, tensorboard/.
"""
from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_vesselgan.config import ExperimentConfig
from tf_vesselgan.data.build import read_manifest
from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.data.pipeline import make_dataset
from tf_vesselgan.errors import ConfigError, UserError
from tf_vesselgan.losses.dice import LOSSES, dice_metric
from tf_vesselgan.models.unet import build_unet
from tf_vesselgan.training.run_folder import prepare_run, read_status, write_status


def resolve_normalization(cfg: ExperimentConfig, train: str, manifest: dict) -> str:
    norm = cfg.unet.normalization
    if norm == "auto":
        norm = manifest["normalization"]["unet"] if train == "real" else "minmax"
    if train != "real" and norm == "global":
        raise ConfigError("unet.normalization 'global' cannot be used with synthetic pairs (they have no "
                          "intensity scale); use minmax or per_patch")
    return norm


def compile_unet(model: keras.Model, learning_rate: float, loss: str = "dice") -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=LOSSES[loss], metrics=[dice_metric])
    return model


def _synthetic_dataset(pairs: tuple[np.ndarray, np.ndarray], norm: str) -> tuple[tf.data.Dataset, int]:
    image, label = pairs
    ds = tf.data.Dataset.from_tensor_slices((image, label))

    def prep(img, lab):
        return normalize(img, norm)[..., None], tf.cast(lab, tf.float32)[..., None]

    return ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE), len(image)


def _augmenter(seed: int):
    """Paired flip/rot90 with stateless randomness keyed on (seed, element index), so
    the augmentation of every training pair is fixed by the seed (a stateful random op
    inside a parallel map hands its draws to elements in a racy order)."""

    def augment(index, pair):
        img, lab = pair
        index = tf.cast(index, tf.int64)
        both = tf.concat([img, lab], axis=-1)
        both = tf.image.stateless_random_flip_left_right(both, tf.stack([tf.constant(seed, tf.int64), 2 * index]))
        k = tf.random.stateless_uniform([], tf.stack([tf.constant(seed, tf.int64), 2 * index + 1]), 0, 4, tf.int32)
        both = tf.image.rot90(both, k)
        return both[..., :1], both[..., 1:]

    return augment


def synthetic_pairs(train: str, samples, manifest: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The synthetic pairs a U-net trains on (None for --train real): one samples.npz or
    several pooled (the pairs of several generators); UserError before anything is written
    when they are missing or do not fit the real patches."""
    if train not in ("synthetic", "both"):
        return None
    if not sample_paths(samples):
        raise UserError(f"--train {train} needs --samples (a samples.npz from `vesselgan sample`)")
    from tf_vesselgan.training.sampling import load_sample_sets

    return load_sample_sets(sample_paths(samples), manifest["patch_size"])


def sample_paths(samples) -> list[str]:
    """--samples as a list of paths: None → [], one path → [it], several as given."""
    if samples is None:
        return []
    return [str(samples)] if isinstance(samples, (str, Path)) else [str(p) for p in samples]


def training_datasets(cfg: ExperimentConfig, train: str, patches_dir, norm: str, seed: int,
                      pairs: tuple[np.ndarray, np.ndarray] | None):
    """(endless train dataset of batches, validation dataset or None, number of training
    pairs, steps per epoch). `pairs`: the synthetic pairs (`synthetic_pairs`), None for --train real."""
    u = cfg.unet
    manifest = read_manifest(patches_dir)
    parts, counts = [], []
    if train in ("real", "both"):
        parts.append(make_dataset(patches_dir, "train", batch_size=1, mode="unet", seed=seed, normalization=norm,
                                  drop_remainder=False).unbatch())
        counts.append(manifest["counts"]["train"])
    if train in ("synthetic", "both"):
        ds, n = _synthetic_dataset(pairs, norm)
        parts.append(ds.shuffle(min(n, 4096), seed=seed))
        counts.append(n)
    if len(parts) == 1:
        ds = parts[0]
    else:  # draw in proportion to the two sets' sizes
        w = np.asarray(counts, np.float64) / sum(counts)
        ds = tf.data.Dataset.sample_from_datasets(parts, weights=list(w), seed=seed, stop_on_empty_dataset=False)
    # Always repeated, with a step count per epoch, so the element index below runs on
    # across epochs and each epoch draws fresh (seeded) augmentations.
    steps = u.steps_per_epoch or max(1, -(-sum(counts) // u.batch_size))
    ds = ds.repeat()
    if u.augment:
        ds = ds.enumerate().map(_augmenter(seed), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(u.batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)
    val = None
    if manifest["counts"].get("val", 0) > 0:
        val = make_dataset(patches_dir, "val", batch_size=u.batch_size, mode="unet", shuffle=False,
                           normalization=norm, drop_remainder=False)
        # a known length: Keras otherwise reads to the end and warns "input ran out of data"
        val = val.apply(tf.data.experimental.assert_cardinality(-(-manifest["counts"]["val"] // u.batch_size)))
    return ds, val, sum(counts), steps


def train_unet(train: str, patches_dir, out, cfg: ExperimentConfig, samples=None, init=None,
               hparams: dict | None = None, verbose: int | None = None,
               pairs: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Trains the half U-net; returns a summary dict. `pairs`: the synthetic pairs when
    the caller already loaded them from `samples` (`synthetic_pairs`)."""
    if train not in ("real", "synthetic", "both"):
        raise UserError(f"--train must be real, synthetic or both, got {train!r}")
    manifest = read_manifest(patches_dir)
    norm = resolve_normalization(cfg, train, manifest)
    if pairs is None:
        pairs = synthetic_pairs(train, samples, manifest)
    if init is not None and not (Path(init) / "unet.keras").exists():
        raise UserError(f"--init {init}: no unet.keras in that run folder")
    run, cfg = prepare_run(out, cfg, resume=False, kind="unet")
    u = cfg.unet
    lr = (hparams or {}).get("learning_rate", u.learning_rate)
    dropout = (hparams or {}).get("dropout", u.dropout)
    keras.utils.set_random_seed(cfg.seed)
    model = compile_unet(build_unet(u.width, dropout), lr, u.loss)
    if init is not None:
        src = Path(init) / "unet.keras"
        model.set_weights(keras.models.load_model(str(src), compile=False).get_weights())
    ds, val, n_pairs, steps = training_datasets(cfg, train, patches_dir, norm, cfg.seed, pairs)
    status = {"kind": "unet", "train": train, "normalization": norm,
              "samples": None if pairs is None else sample_paths(samples),
              "mean": manifest["normalization"]["mean"], "std": manifest["normalization"]["std"],
              "patch_size": manifest["patch_size"], "splits": manifest["splits"], "training_pairs": n_pairs,
              "learning_rate": lr, "dropout": dropout, "init": str(init) if init else None,
              "threshold": u.threshold, "state": "running"}
    write_status(run, **status)
    callbacks = [keras.callbacks.CSVLogger(str(run / "history.csv")),
                 keras.callbacks.TensorBoard(str(run / "tensorboard"), write_graph=False)]
    if val is not None:
        callbacks.append(keras.callbacks.ModelCheckpoint(str(run / "unet.keras"), monitor="val_dice_metric",
                                                         mode="max", save_best_only=True))
    if verbose is None:
        import sys

        verbose = 1 if sys.stderr.isatty() else 2
    t0 = time.perf_counter()
    hist = model.fit(ds, validation_data=val, epochs=u.epochs, steps_per_epoch=steps,
                     callbacks=callbacks, verbose=verbose)
    if val is None:
        model.save(str(run / "unet.keras"))
    seconds = time.perf_counter() - t0
    best = max(hist.history.get("val_dice_metric", [float("nan")]))
    write_status(run, state="complete", seconds=seconds, best_val_dice_patches=best)
    return {"run": str(run), "seconds": seconds, "best_val_dice": best}


def load_unet(run) -> tuple[keras.Model, dict]:
    run = Path(run)
    path = run / "unet.keras"
    if not path.exists():
        raise UserError(f"{run} has no trained U-net (no unet.keras)")
    status = read_status(run)
    return keras.models.load_model(str(path), compile=False), status
