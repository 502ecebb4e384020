"""tf.data streaming of patch shards: parse, normalise, shuffle, batch, prefetch.

Never holds more than the shuffle buffer in memory. Works with
`strategy.distribute_datasets_from_function` through `input_context`.
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tf_vesselgan.data.build import read_manifest
from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.data.records import decode
from tf_vesselgan.errors import DataError


def make_dataset(patches_dir, split: str = "train", batch_size: int = 32, mode: str = "gan",
                 shuffle: bool = True, seed: int = 0, repeat: bool = False,
                 deterministic: bool = True, shuffle_buffer: int = 4096,
                 drop_remainder: bool = True, input_context: tf.distribute.InputContext | None = None,
                 normalization: str | None = None) -> tf.data.Dataset:
    """Streams (normalised) patch pairs.

    Args:
        mode: "gan" → float32 [B, P, P, 2] (image in [-1,1], label {0,1});
              "unet" → (image [B,P,P,1] z-scored, label float32 [B,P,P,1]).
        input_context: when given, shards files per input pipeline and uses the
            per-replica batch size.
        normalization: U-net only; "global" (training statistics from the manifest),
            "per_patch" z-score, or "minmax" (the GAN's scale); defaults to the manifest's.
    """
    manifest = read_manifest(patches_dir)
    if split not in manifest["shards"]:
        raise DataError(f"{patches_dir}: no split '{split}'")
    size = manifest["patch_size"]
    files = [str(Path(patches_dir) / s["file"]) for s in manifest["shards"][split] if s["count"] > 0]
    if not files:
        raise DataError(f"{patches_dir}: split '{split}' has no patches")
    compression = "GZIP" if manifest.get("compression") == "GZIP" else ""
    norm = normalization or manifest["normalization"]["unet"]
    mean = float(manifest["normalization"]["mean"])
    std = float(manifest["normalization"]["std"]) or 1.0

    ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        if input_context.num_input_pipelines > 1 and len(files) >= input_context.num_input_pipelines:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
                       cycle_length=min(len(files), 4), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=deterministic)
    if input_context is not None and input_context.num_input_pipelines > 1 and len(files) < input_context.num_input_pipelines:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    if mode == "gan":
        def pair(serialized):
            return _gan_pair(serialized, size)
    else:
        def pair(serialized):
            return _unet_pair(serialized, size, norm, mean, std)
    ds = ds.map(pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


def _gan_pair(serialized, size: int):
    """[P, P, 2]: the image min-max scaled to [-1, 1], the label {0, 1}."""
    ex = decode(serialized, size)
    return tf.stack([normalize(ex["image"], "minmax"), tf.cast(ex["label"], tf.float32)], axis=-1)


def _unet_pair(serialized, size: int, norm: str, mean: float, std: float):
    """(image [P, P, 1] normalised as `norm` says, label [P, P, 1])."""
    ex = decode(serialized, size)
    return normalize(ex["image"], norm, mean, std)[..., None], tf.cast(ex["label"], tf.float32)[..., None]


def image_channels(patches_dir, n: int, split: str = "train", seed: int = 0):
    """Image channels in [-1, 1] (the GAN's scale) of the first n shuffled patches of a split."""
    return labelled_patches(patches_dir, n, split, seed)[0]


def labelled_patches(patches_dir, n: int, split: str = "train", seed: int = 0):
    """(image channels in [-1, 1], labels uint8 {0, 1}) of the first n shuffled patches of
    a split."""
    import numpy as np

    images, labels, got = [], [], 0
    for batch in make_dataset(patches_dir, split, batch_size=256, mode="gan", seed=seed, drop_remainder=False):
        pair = batch.numpy()
        images.append(pair[..., 0])
        labels.append((pair[..., 1] > 0.5).astype(np.uint8))
        got += len(pair)
        if got >= n:
            break
    return np.concatenate(images)[:n], np.concatenate(labels)[:n]
