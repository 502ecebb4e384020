"""Discriminators/critics for the three GANs: 5 stride-2 convolutions, kernel 5, LeakyReLU 0.2.

- "dcgan": batch norm, optional minibatch discrimination, one logit (D = sigmoid(logit)).
- "wgan-gp": instance normalisation (GroupNormalization(groups=-1)), linear output.
- "wgan-gp-sn": spectral normalisation on the conv layers instead of instance norm.
Channel counts mirror the generator (96→192→384→768→1536 at width 1.0). The model has
two outputs: the score and the last conv layer's features (for feature matching).
"""
from __future__ import annotations

import keras
from keras import layers

from tf_vesselgan.models.generator import scaled
from tf_vesselgan.models.minibatch import MinibatchDiscrimination

PAPER_CHANNELS = (96, 192, 384, 768, 1536)
KINDS = ("dcgan", "wgan-gp", "wgan-gp-sn")


def build_critic(kind: str, width: float = 1.0, patch_size: int = 96, minibatch_discrimination: bool = True,
                 synchronized_bn: bool = False, name: str | None = None) -> keras.Model:
    if kind not in KINDS:
        raise ValueError(f"unknown critic kind {kind!r}")
    ch = scaled(PAPER_CHANNELS, width)
    x_in = keras.Input((patch_size, patch_size, 2), name="pair")
    x = x_in
    for i, c in enumerate(ch):
        conv = layers.Conv2D(c, 5, strides=2, padding="same", name=f"conv{i}")
        if kind == "wgan-gp-sn":
            x = layers.SpectralNormalization(conv, name=f"sn_conv{i}")(x)
        else:
            x = conv(x)
            if i > 0 and kind == "dcgan":
                x = layers.BatchNormalization(synchronized=synchronized_bn)(x)
            elif i > 0:
                x = layers.GroupNormalization(groups=-1, name=f"instance_norm{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
    features = x
    h = layers.Flatten()(x)
    if kind == "dcgan" and minibatch_discrimination:
        h = MinibatchDiscrimination(name="minibatch_discrimination")(h)
    score = layers.Dense(1, dtype="float32", name="score")(h)
    return keras.Model(x_in, [score, features], name=name or kind.replace("-", "_") + "_critic")
