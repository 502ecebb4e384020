"""Discriminators/critics for the three GANs: stride-2 convolutions, kernel 5, LeakyReLU 0.2.

- "dcgan": batch norm, optional minibatch discrimination, one logit (D = sigmoid(logit)).
- "wgan-gp": instance normalisation (GroupNormalization(groups=-1)), linear output.
- "wgan-gp-sn": spectral normalisation on the conv layers instead of instance norm.

Two layouts (`gan.critic_layout`):
- "mirror": 5 convolutions whose channels mirror the generator (96→192→384→768→1536 at
  width 1.0), no normalisation on the first, a dense score on the last map.
- "official": the paper's code. Normalisation on every convolution of the DCGAN and
  WGAN-GP critics, no conv biases. WGAN critics as the mirror otherwise (their last 5×5
  convolution to one channel on the 3×3 map is a dense layer without bias). The DCGAN
  discriminator is smaller: 4 convolutions (96→…→768), a 50-channel 5×5 convolution with
  padding 1 (no activation; 2×2 on a 96 patch), a dense 200→200, minibatch
  discrimination adding 100 features, a dense 300→1.
The model has two outputs: the score and the last conv layer's features (for feature
matching).
"""
from __future__ import annotations

import keras
from keras import layers

from tf_vesselgan.models.generator import scaled
from tf_vesselgan.models.minibatch import MinibatchDiscrimination

PAPER_CHANNELS = (96, 192, 384, 768, 1536)
KINDS = ("dcgan", "wgan-gp", "wgan-gp-sn")
LAYOUTS = ("mirror", "official")
# the official DCGAN discriminator's head (fixed sizes, not scaled with the width)
HEAD_CHANNELS, HEAD_UNITS, MBD_KERNELS, MBD_DIM = 50, 200, 100, 16


def check_patch_size(kind: str, patch_size: int, minibatch_discrimination: bool = True,
                     layout: str = "mirror") -> None:
    """ValueError if this critic cannot take patches of this size."""
    if layout == "official" and kind == "dcgan" and minibatch_discrimination and patch_size < 96:
        raise ValueError(f"the official DCGAN discriminator needs patches of at least 96 pixels, got {patch_size}")


def build_critic(kind: str, width: float = 1.0, patch_size: int = 96, minibatch_discrimination: bool = True,
                 synchronized_bn: bool = False, name: str | None = None, layout: str = "mirror") -> keras.Model:
    if kind not in KINDS:
        raise ValueError(f"unknown critic kind {kind!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"critic layout must be one of {LAYOUTS}, got {layout!r}")
    official = layout == "official"
    head = official and kind == "dcgan" and minibatch_discrimination
    check_patch_size(kind, patch_size, minibatch_discrimination, layout)
    ch = scaled(PAPER_CHANNELS[:4] if head else PAPER_CHANNELS, width)
    x_in = keras.Input((patch_size, patch_size, 2), name="pair")
    x = x_in
    for i, c in enumerate(ch):
        conv = layers.Conv2D(c, 5, strides=2, padding="same", use_bias=not official, name=f"conv{i}")
        if kind == "wgan-gp-sn":
            x = layers.SpectralNormalization(conv, name=f"sn_conv{i}")(x)
        else:
            x = conv(x)
            if (i > 0 or official) and kind == "dcgan":
                x = layers.BatchNormalization(synchronized=synchronized_bn)(x)
            elif i > 0 or official:
                x = layers.GroupNormalization(groups=-1, name=f"instance_norm{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
    if head:
        x = layers.ZeroPadding2D(1)(x)
        x = layers.Conv2D(HEAD_CHANNELS, 5, strides=2, padding="valid", use_bias=False, name=f"conv{len(ch)}")(x)
    features = x
    h = layers.Flatten()(x)
    if head:
        h = layers.Dense(HEAD_UNITS, name="dense")(h)
        h = MinibatchDiscrimination(MBD_KERNELS, MBD_DIM, name="minibatch_discrimination")(h)
    elif kind == "dcgan" and minibatch_discrimination:
        h = MinibatchDiscrimination(name="minibatch_discrimination")(h)
    score = layers.Dense(1, use_bias=not official or kind == "dcgan", dtype="float32", name="score")(h)
    return keras.Model(x_in, [score, features], name=name or kind.replace("-", "_") + "_critic")
