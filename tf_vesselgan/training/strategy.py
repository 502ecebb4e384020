"""Choosing a tf.distribute strategy: default, MirroredStrategy, or multi-worker from TF_CONFIG."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from tf_vesselgan.errors import ConfigError


def make_strategy(name: str = "auto", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """auto: MultiWorkerMirrored when TF_CONFIG names a cluster, Mirrored over several
    GPUs (or the configured devices), else the default strategy."""
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multiworker"
        elif devices or len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        try:
            json.loads(os.environ.get("TF_CONFIG", ""))
        except ValueError:
            raise ConfigError("gan.strategy multiworker needs a TF_CONFIG environment variable with valid JSON") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown strategy {name!r}")


def in_multi_worker_mode(strategy) -> bool:
    """Whether `strategy` is a MultiWorkerMirroredStrategy over a cluster of several workers.

    TensorFlow has no public API for this: `extended._in_multi_worker_mode()` is private
    (stable since TF 2.4). This is the one place that calls it; False if it is gone."""
    extended = getattr(strategy, "extended", None)
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        getattr(extended, "_in_multi_worker_mode", lambda: False)())
