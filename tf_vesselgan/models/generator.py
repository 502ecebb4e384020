"""Generator shared by the three GANs: noise (100) → 6 transposed convolutions → 96×96×2.

Channel 0 is the image, channel 1 the vessel label; tanh output. At `width=1.0` the
channel counts are the paper's (1536→768→384→192→96→2, ≈43 M parameters). The first
layer is a 5×5 transposed convolution on a 1×1 input, cropped, exactly as the official
PyTorch code's padding-1 layer (a Dense projection would be 5.7–7.1 % smaller).
`upsample="resize"` replaces each stride-2 transposed convolution by nearest-neighbour
upsampling and a 3×3 convolution (Odena et al. 2016, "Deconvolution and checkerboard
artifacts"): same channels, no checkerboard by construction, ≈1.4× the multiply-adds.
`label_head="image"` draws the label by a head of its own that sees the drawn image:
the last layer makes the image channel only; a second ×2 layer from the same 48×48
features, batch norm and ReLU, concatenated with the image (before tanh), gives the label
through a 3×3 convolution — so a label pixel can follow its image pixel's brightness.
"""
from __future__ import annotations

import keras
from keras import layers

PAPER_CHANNELS = (1536, 768, 384, 192, 96)


def scaled(channels, width: float) -> list[int]:
    return [max(1, int(round(c * width))) for c in channels]


UPSAMPLING = ("transposed", "resize")
LABEL_HEADS = ("shared", "image")


def check_patch_size(patch_size: int) -> None:
    """ValueError unless the generator can draw patches of this size (32·s, s ∈ {1, 3, 5})."""
    if patch_size % 32 or patch_size // 32 not in (1, 3, 5):
        raise ValueError(f"patch_size must be 32, 96 or 160 for this generator, got {patch_size}")


def build_generator(latent_dim: int = 100, width: float = 1.0, patch_size: int = 96,
                    synchronized_bn: bool = False, name: str = "generator",
                    upsample: str = "transposed", label_head: str = "shared") -> keras.Model:
    """Builds the generator.

    Args:
        latent_dim: noise length.
        width: multiplies the paper's channel counts.
        patch_size: 32·s with s ∈ {1, 3, 5} (96 = the paper).
        synchronized_bn: batch statistics over all replicas (MirroredStrategy).
        upsample: "transposed" (the paper's 5×5 stride-2 transposed convolutions) or
            "resize" (nearest-neighbour ×2, then a 3×3 convolution).
        label_head: "shared" (the last layer draws image and label, the paper) or
            "image" (the label by its own head from the last features and the image).
    """
    if upsample not in UPSAMPLING:
        raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
    if label_head not in LABEL_HEADS:
        raise ValueError(f"label_head must be one of {LABEL_HEADS}, got {label_head!r}")
    check_patch_size(patch_size)
    start = patch_size // 32
    ch = scaled(PAPER_CHANNELS, width)
    z = keras.Input((latent_dim,), name="noise")
    x = layers.Reshape((1, 1, latent_dim))(z)
    x = layers.Conv2DTranspose(ch[0], 5, strides=1, padding="valid", use_bias=False, name="project")(x)
    if start < 5:
        x = layers.Cropping2D((5 - start) // 2)(x)
    x = layers.BatchNormalization(synchronized=synchronized_bn)(x)
    x = layers.ReLU()(x)
    for i, c in enumerate(ch[1:]):
        x = _up(x, c, f"up{i + 1}", upsample, use_bias=False)
        x = layers.BatchNormalization(synchronized=synchronized_bn)(x)
        x = layers.ReLU()(x)
    if label_head == "shared":
        x = _up(x, 2, "up5", upsample, use_bias=True)
    else:
        image = _up(x, 1, "up5", upsample, use_bias=True)
        lab = _up(x, ch[-1], "label_up", upsample, use_bias=False)
        lab = layers.ReLU()(layers.BatchNormalization(synchronized=synchronized_bn)(lab))
        lab = layers.Conv2D(1, 3, padding="same", name="label_out")(layers.Concatenate()([lab, image]))
        x = layers.Concatenate(name="image_label")([image, lab])
    out = layers.Activation("tanh", dtype="float32", name="pair")(x)
    return keras.Model(z, out, name=name)


def _up(x, channels: int, name: str, upsample: str, use_bias: bool):
    """×2 in height and width to `channels`: the layer keeps `name` (a convolution's)."""
    if upsample == "transposed":
        return layers.Conv2DTranspose(channels, 5, strides=2, padding="same", use_bias=use_bias, name=name)(x)
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
    return layers.Conv2D(channels, 3, padding="same", use_bias=use_bias, name=name)(x)
