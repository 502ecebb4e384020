"""Half U-net (Livne et al. 2019): 4 poolings, filters 32-64-128-256-512 at width 1.0.

Per level conv3×3-ReLU → dropout → conv3×3-ReLU; upsampling + concatenation on the
way up; 1×1 conv + sigmoid. Fully convolutional: any input size divisible by 16.
"""
from __future__ import annotations

import keras
from keras import layers

PAPER_FILTERS = (32, 64, 128, 256, 512)


def _block(x, filters, dropout, name):
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal", name=f"{name}_a")(x)
    x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal", name=f"{name}_b")(x)


def build_unet(width: float = 1.0, dropout: float = 0.1, name: str = "half_unet") -> keras.Model:
    f = [max(1, int(round(c * width))) for c in PAPER_FILTERS]
    inp = keras.Input((None, None, 1), name="image")
    skips, x = [], inp
    for i, c in enumerate(f[:-1]):
        x = _block(x, c, dropout, f"down{i}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = _block(x, f[-1], dropout, "bottom")
    for i, c in reversed(list(enumerate(f[:-1]))):
        x = layers.UpSampling2D(2, name=f"upsample{i}")(x)
        x = layers.Concatenate(name=f"concat{i}")([x, skips[i]])
        x = _block(x, c, dropout, f"up{i}")
    out = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(inp, out, name=name)


def encoder_of(unet: keras.Model) -> keras.Model:
    """image → globally average-pooled bottleneck features (a domain feature space for FID)."""
    bottom = unet.get_layer("bottom_b").output
    pooled = layers.GlobalAveragePooling2D()(bottom)
    return keras.Model(unet.input, pooled, name="unet_encoder")
