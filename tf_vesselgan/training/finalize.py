"""What a GAN run hands out: the sampling generator and its label threshold.

The sampling generator is a copy of the generator (or of its weight average) whose
batch-norm statistics are recalibrated to the population statistics of its own
activations, whose label channel can pass a fixed blur and a floor on the image's
brightness, and whose label threshold can be calibrated so that the samples' vessel
fraction equals the real training patches'. All
are fixed when a generator is saved, so `vesselgan sample`, exports and the server all
sample the same way.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

RECALIBRATION_BATCHES = 16
RECALIBRATION_BATCH = 128
CALIBRATION_SAMPLES = 2048


def batch_norm_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_batch_norm(generator: keras.Model, seed: int = 0, batches: int = RECALIBRATION_BATCHES,
                           batch: int = RECALIBRATION_BATCH) -> None:
    """Sets every BN layer's moving mean/variance to the average of its batch statistics
    over `batches` noise batches ("precise BN", Wu & Johnson 2021).

    Keras' moving averages (momentum 0.99) lag the weights by ~100 updates, so a generator
    saved after a few hundred steps samples in eval mode with statistics of a different
    network (the demo's identical noise samples). The official code samples with batch
    statistics instead; population statistics are what those converge to, and they make
    eval-mode sampling deterministic per noise vector and independent of the batch.
    """
    layers = batch_norm_layers(generator)
    if not layers:
        return
    latent = generator.input_shape[-1]
    old = [layer.momentum for layer in layers]
    try:
        for k in range(batches):
            for layer in layers:
                layer.momentum = k / (k + 1.0)  # running mean of the batch statistics
            z = tf.random.stateless_normal([batch, latent], seed=[seed, 7919 + k])
            generator(z, training=True)
    finally:
        for layer, m in zip(layers, old):
            layer.momentum = m


def sampling_copy(source: keras.Model, seed: int, recalibrate: bool = True) -> keras.Model:
    """A fresh generator with `source`'s weights (BN recalibrated unless told not to)."""
    copy = keras.models.clone_model(source)
    copy.set_weights(source.get_weights())
    if recalibrate:
        recalibrate_batch_norm(copy, seed)
    return copy


def with_label_blur(generator: keras.Model, sigma: float) -> keras.Model:
    """`generator` followed by a fixed Gaussian blur (σ in pixels, radius 4σ, zero padding)
    of its label channel; the image channel passes unchanged. Built from Keras' own layers,
    so the saved generator loads and exports without custom code."""
    r = max(1, int(4 * sigma + 0.5))
    with np.errstate(over="ignore"):  # a tiny sigma: exp(-inf) = 0 off the centre, no 0/0
        g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel = np.zeros((2 * r + 1, 2 * r + 1, 2, 2), np.float32)
    kernel[r, r, 0, 0] = 1.0
    kernel[..., 1, 1] = np.outer(g, g) / np.outer(g, g).sum()
    blur = keras.layers.Conv2D(2, 2 * r + 1, padding="same", use_bias=False, trainable=False, name="label_blur")
    z = keras.Input(generator.input_shape[1:])
    model = keras.Model(z, blur(generator(z)), name=f"{generator.name}_label_blur")
    blur.set_weights([kernel])
    return model


@keras.saving.register_keras_serializable(package="tf_vesselgan")
class LabelIntensityFloor(keras.layers.Layer):
    """Sets a pair's label channel to the tanh floor (-1) wherever its image, min–max
    scaled to [0, 1] within the patch, is darker than `floor`; the image passes unchanged.
    TOF-MRA vessels are the brightest pixels: on ICBM 99 % of the real training patches'
    vessel pixels scale to ≥ 0.94, where a {0, 1}-coded generator put 39 % of its labels
    below that (README)."""

    def __init__(self, floor: float, **kwargs):
        super().__init__(**kwargs)
        self.floor = float(floor)

    def call(self, pair):
        image, label = pair[..., :1], pair[..., 1:]
        lo = keras.ops.min(image, axis=(1, 2), keepdims=True)
        hi = keras.ops.max(image, axis=(1, 2), keepdims=True)
        scaled = (image - lo) / keras.ops.maximum(hi - lo, 1e-6)
        return keras.ops.concatenate([image, keras.ops.where(scaled >= self.floor, label, -1.0)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}


def with_label_floor(generator: keras.Model, floor: float) -> keras.Model:
    """`generator` followed by `LabelIntensityFloor(floor)`."""
    z = keras.Input(generator.input_shape[1:])
    return keras.Model(z, LabelIntensityFloor(floor, name="label_floor")(generator(z)),
                       name=f"{generator.name}_label_floor")


def label_channel(generator: keras.Model, n: int = CALIBRATION_SAMPLES, seed: int = 0) -> np.ndarray:
    """Raw (tanh-range) label channel of n eval-mode samples with a fixed noise."""
    latent = generator.input_shape[-1]
    z = tf.random.stateless_normal([n, latent], seed=[seed, 104729])
    out = [generator(z[i:i + 256], training=False)[..., 1].numpy() for i in range(0, n, 256)]
    return np.concatenate(out)


def calibrate_threshold(labels: np.ndarray, real_fraction: float) -> float:
    """The threshold t with mean(labels > t) ≈ real_fraction (the (1 − f) quantile),
    clipped to the tanh range."""
    if not 0.0 < real_fraction < 1.0:
        return float(np.clip(np.max(labels) if real_fraction <= 0 else np.min(labels) - 1e-6, -1.0, 1.0))
    return float(np.clip(np.quantile(labels, 1.0 - real_fraction), -1.0, 1.0))


def real_label_fraction(patches_dir, limit: int = 100_000) -> float:
    """Fraction of vessel pixels in the training patches (up to `limit` patches)."""
    from tf_vesselgan.data.pipeline import make_dataset

    total, ones = 0, 0.0
    for batch in make_dataset(patches_dir, "train", batch_size=256, mode="gan", shuffle=False, drop_remainder=False):
        lab = batch.numpy()[..., 1]
        ones += float(lab.sum())
        total += lab.size
        if total >= limit * lab.shape[1] * lab.shape[2]:
            break
    return ones / max(total, 1)


def real_label_floor(patches_dir, quantile: float = 0.01, limit: int = 20_000) -> float:
    """The `quantile` of the training patches' vessel pixels' image intensity, each patch
    min–max scaled to [0, 1] (up to `limit` patches): `gan.label_min_intensity: auto`."""
    from tf_vesselgan.data.pipeline import make_dataset

    values, seen = [], 0
    for batch in make_dataset(patches_dir, "train", batch_size=256, mode="gan", shuffle=False, drop_remainder=False):
        pair = batch.numpy()  # the GAN's input: each image already min-max scaled to [-1, 1]
        values.append((pair[..., 0][pair[..., 1] > 0.5] + 1.0) / 2.0)
        seen += len(pair)
        if seen >= limit:
            break
    values = np.concatenate(values) if values else np.zeros(0)
    return float(np.quantile(values, quantile)) if values.size else 0.0


def label_floor_of(gan_cfg, status: dict) -> float | None:
    """The label floor a GAN config asks for: its number, the run's calibrated one for
    'auto' (run.json's real_label_floor), None when off."""
    value = gan_cfg.label_min_intensity
    if value == "auto":
        if status.get("real_label_floor") is None:
            raise ValueError("label_min_intensity 'auto' needs the real label floor")
        return float(status["real_label_floor"])
    return float(value) or None


def fixed_noise_images(generator: keras.Model, n: int = 256, seed: int = 0) -> np.ndarray:
    """The image channel of n samples from fixed noise (the same noise every epoch)."""
    latent = generator.input_shape[-1]
    z = tf.random.stateless_normal([n, latent], seed=[seed, 15485863])
    return generator(z, training=False)[..., 0].numpy()


def pixel_std(images: np.ndarray) -> float:
    """Mean over pixels of the per-pixel std across samples ([n, H, W]): near 0 when
    every noise vector gives the same pair (mode collapse)."""
    return float(images.std(axis=0).mean())


def sample_similarity(images: np.ndarray) -> float:
    """Mean Pearson correlation between the images of different samples ([n, H, W]).

    Per-pixel std misses a partial collapse in which every sample draws the same
    structure at a different brightness; each image is standardised first, so this sees
    it. Real ICBM training patches: 0.05; 1.0 = every sample the same pattern.
    """
    x = images.reshape(len(images), -1).astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    corr = x @ x.T
    n = len(x)
    return float((corr.sum() - np.trace(corr)) / max(n * (n - 1), 1))


def finalize_generator(source: keras.Model, gan_cfg, seed: int, real_fraction: float | None,
                       label_floor: float | None = None):
    """(sampling generator, threshold, info dict) for a GAN config's sampling settings
    (`label_floor`: the resolved gan.label_min_intensity, see `label_floor_of`)."""
    gen = sampling_copy(source, seed, recalibrate=gan_cfg.sample_bn == "recalibrate")
    info = {"sample_bn": gan_cfg.sample_bn, "ema_decay": gan_cfg.ema_decay}
    if gan_cfg.label_blur:
        gen = with_label_blur(gen, gan_cfg.label_blur)
        info["label_blur"] = gan_cfg.label_blur
    if label_floor:
        gen = with_label_floor(gen, label_floor)
        info["label_min_intensity"] = label_floor
    labels = label_channel(gen, seed=seed)
    if gan_cfg.label_threshold == "auto":
        if real_fraction is None:
            raise ValueError("label_threshold 'auto' needs the real label fraction")
        thr = calibrate_threshold(labels, real_fraction)
    else:
        thr = float(gan_cfg.label_threshold)
    info.update(label_threshold=thr, sample_label_fraction=float((labels > thr).mean()))
    if real_fraction is not None:
        info["real_label_fraction"] = real_fraction
    return gen, thr, info
