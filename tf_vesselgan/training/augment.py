"""Differentiable augmentation of image+label pairs before the critic (DiffAugment).

Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training": the same
kind of random transform is applied to real and to generated pairs (and the generator's
gradient flows through it), so the critic cannot memorise a small training set while the
generator still learns the un-augmented distribution. Every transform moves the image and
its label together; randomness is passed in, so replicas and tests control it.
"""
from __future__ import annotations

import tensorflow as tf

TRANSLATION_FRACTION = 0.125  # DiffAugment's default: shifts up to 1/8 of the side
CUTOUT_FRACTION = 0.5  # DiffAugment's default: a square of half the side


def translate(pairs, shift):
    """Shifts each pair by integer (dy, dx) = shift[i], zero-filling what enters.

    Args:
        pairs: [B, H, W, C]. shift: int32 [B, 2], each |value| ≤ the pad.
    """
    h, w = tf.shape(pairs)[1], tf.shape(pairs)[2]
    pad = tf.reduce_max(tf.abs(shift))
    padded = tf.pad(pairs, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = tf.range(h)[None, :] + pad - shift[:, :1]  # output row r reads input row r - dy
    cols = tf.range(w)[None, :] + pad - shift[:, 1:]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def cutout(pairs, centre):
    """Zeroes a square of side CUTOUT_FRACTION·H centred at centre[i] (int32 [B, 2]) in
    both channels (image 0 = mid grey, label 0 = background)."""
    h, w = tf.shape(pairs)[1], tf.shape(pairs)[2]
    half = tf.cast(tf.cast(h, tf.float32) * CUTOUT_FRACTION / 2, tf.int32)
    yy = tf.range(h)[None, :, None]
    xx = tf.range(w)[None, None, :]
    inside = (tf.abs(yy - centre[:, :1, None]) < half) & (tf.abs(xx - centre[:, 1:, None]) < half)
    return pairs * tf.cast(~inside, pairs.dtype)[..., None]


def flip(pairs, coin):
    """Left-right flip of the pairs where coin[i] (float [B]) is ≥ 0.5."""
    return tf.where(coin[:, None, None, None] >= 0.5, tf.reverse(pairs, axis=[2]), pairs)


def diff_augment(pairs, policy: str, uniform):
    """Applies the comma-separated `policy` (translation, cutout, flip) in that order.

    Args:
        pairs: [B, H, W, C].
        uniform: callable(salt, shape) → U[0, 1) draws of `shape` (the caller's seeded
            randomness; a different salt per use).
    """
    parts = {p for p in policy.split(",") if p}
    if not parts:
        return pairs
    b = tf.shape(pairs)[0]
    size = tf.cast(tf.shape(pairs)[1:3], tf.float32)
    if "translation" in parts:
        limit = tf.round(size * TRANSLATION_FRACTION)
        u = uniform(0, [2])
        shift = tf.cast(tf.floor(u * (2 * limit + 1)) - limit, tf.int32)
        pairs = translate(pairs, tf.reshape(shift, [b, 2]))
    if "cutout" in parts:
        centre = tf.cast(tf.floor(uniform(1, [2]) * size), tf.int32)
        pairs = cutout(pairs, tf.reshape(centre, [b, 2]))
    if "flip" in parts:
        pairs = flip(pairs, tf.reshape(uniform(2, []), [b]))
    return pairs
