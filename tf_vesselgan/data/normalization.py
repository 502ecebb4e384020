"""The U-net's input normalisation: one definition for training (patch shards and
synthetic pairs), whole-volume inference, the exported signature and the quality scores.

Modes: "global" (z-score with the training patches' mean and std), "per_patch" (z-score of
each patch) and "minmax" (each patch to [-1, 1], the GAN's scale; a flat patch maps to -1).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

MODES = ("global", "per_patch", "minmax")


def normalize(patches, mode: str, mean: float = 0.0, std: float = 1.0, axes=(-2, -1)):
    """`patches` normalised per patch over its spatial `axes`: a tensor for a tensor, an
    array for an array (computed by the same TensorFlow ops either way)."""
    as_array = isinstance(patches, np.ndarray)
    x = tf.convert_to_tensor(patches, tf.float32)
    axes = list(axes)
    if mode == "global":
        out = (x - mean) / (std or 1.0)
    elif mode == "minmax":
        lo = tf.reduce_min(x, axis=axes, keepdims=True)
        hi = tf.reduce_max(x, axis=axes, keepdims=True)
        out = 2.0 * (x - lo) / tf.maximum(hi - lo, 1e-8) - 1.0
    elif mode == "per_patch":
        m, v = tf.nn.moments(x, axes=axes, keepdims=True)
        out = (x - m) / tf.maximum(tf.sqrt(v), 1e-6)
    else:
        raise ValueError(f"unknown normalisation {mode!r} (one of {', '.join(MODES)})")
    return out.numpy() if as_array else out
