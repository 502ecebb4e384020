"""Whole-volume inference options against brute-force references on a small volume:
Gaussian tile weighting, flip test-time augmentation, small-component removal."""
import itertools

import keras
import numpy as np
import pytest
from scipy import ndimage

from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.evaluation.inference import remove_small_components, segment_volume, tile_weight

SIZE = 16
STATUS = {"patch_size": SIZE, "normalization": "minmax", "mean": 0.0, "std": 1.0}


def asymmetric_model():
    """A fully convolutional model that is not flip-invariant (so TTA changes its output)."""
    x = keras.Input((None, None, 1))
    y = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid",
                            kernel_initializer=keras.initializers.RandomNormal(seed=1),
                            bias_initializer="zeros")(x)
    return keras.Model(x, y)


def brute_force(model, image, mask, stride, weighting, flips):
    """Every tile origin by hand, every flip by hand, the weighted mean per voxel."""
    nx, ny, nz = image.shape
    xs = sorted(set(list(range(0, nx - SIZE + 1, stride)) + [nx - SIZE]))
    ys = sorted(set(list(range(0, ny - SIZE + 1, stride)) + [ny - SIZE]))
    w = tile_weight(SIZE, weighting)
    num, den = np.zeros(image.shape), np.zeros(image.shape)
    for z, x, y in itertools.product(range(nz), xs, ys):
        if not mask[x:x + SIZE, y:y + SIZE, z].any():
            continue
        tile = normalize(image[None, x:x + SIZE, y:y + SIZE, z].astype(np.float32), "minmax")[0]
        variants = [(slice(None), slice(None))]
        if flips:
            variants += [(slice(None, None, -1), slice(None)), (slice(None), slice(None, None, -1)),
                         (slice(None, None, -1), slice(None, None, -1))]
        p = np.mean([model(tile[a, b][None, ..., None]).numpy()[0, ..., 0][a, b] for a, b in variants], axis=0)
        num[x:x + SIZE, y:y + SIZE, z] += p * w
        den[x:x + SIZE, y:y + SIZE, z] += w
    out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return out * mask


@pytest.mark.parametrize("weighting,flips", [("uniform", False), ("gaussian", False), ("uniform", True),
                                             ("gaussian", True)])
def test_segment_volume_matches_brute_force(weighting, flips):
    rng = np.random.default_rng(0)
    image = rng.normal(100, 20, (37, 29, 3)).astype(np.float32)
    mask = np.zeros(image.shape, bool)
    mask[3:34, 2:27, :2] = True
    model = asymmetric_model()
    got = segment_volume(model, image, mask, STATUS, stride=6, weighting=weighting, flips=flips)
    np.testing.assert_allclose(got, brute_force(model, image, mask, 6, weighting, flips), atol=1e-5)


def test_options_change_the_answer():
    rng = np.random.default_rng(1)
    image = rng.normal(100, 20, (30, 30, 1)).astype(np.float32)
    mask = np.ones(image.shape, bool)
    model = asymmetric_model()
    base = segment_volume(model, image, mask, STATUS, stride=5)
    assert np.abs(segment_volume(model, image, mask, STATUS, stride=5, weighting="gaussian") - base).max() > 1e-3
    assert np.abs(segment_volume(model, image, mask, STATUS, stride=5, flips=True) - base).max() > 1e-3


def test_gaussian_weight_peaks_in_the_centre():
    w = tile_weight(SIZE, "gaussian")
    assert w.max() == pytest.approx(1.0) and w.min() > 0
    c = SIZE // 2
    assert w[c, c] > w[c, c - 2] > w[c, c - 4] > w[0, 0] > 0
    np.testing.assert_array_equal(w, w[::-1, ::-1])


def test_small_components_removed_like_brute_force():
    rng = np.random.default_rng(2)
    seg = ndimage.binary_dilation(rng.random((20, 20, 10)) > 0.97)
    got = remove_small_components(seg, 12)
    labels, n = ndimage.label(seg, structure=np.ones((3, 3, 3)))
    want = np.zeros_like(seg)
    for k in range(1, n + 1):
        if (labels == k).sum() >= 12:
            want |= labels == k
    assert want.any() and (seg & ~want).any()  # the case removes some and keeps some
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(remove_small_components(seg, 0), seg)


@pytest.mark.parametrize("mode", ["global", "minmax", "per_patch"])
@pytest.mark.parametrize("weighting,flips", [("uniform", False), ("gaussian", True)])
def test_tensorflow_tiling_equals_segment_volume(mode, weighting, flips):
    """The exported U-net's graph and `vesselgan segment` give the same probabilities."""
    import tensorflow as tf

    from tf_vesselgan.evaluation.inference import segment_slices_tf

    rng = np.random.default_rng(3)
    image = rng.normal(100, 20, (37, 29, 3)).astype(np.float32)
    image[5:9, 5:20, :] += 80  # structure, so tiles differ in their statistics
    status = {"patch_size": SIZE, "normalization": mode, "mean": 90.0, "std": 25.0}
    model = asymmetric_model()
    want = segment_volume(model, image, np.ones(image.shape, bool), status, stride=6, weighting=weighting,
                          flips=flips)
    got = segment_slices_tf(model, tf.constant(image.transpose(2, 0, 1)[..., None]), SIZE, 6, mode, 90.0, 25.0,
                            weighting, flips, chunk=7).numpy()[..., 0].transpose(1, 2, 0)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_stride_beyond_the_tile_still_covers_every_voxel():
    image = np.random.default_rng(4).normal(100, 20, (50, 50, 1)).astype(np.float32)
    prob = segment_volume(asymmetric_model(), image, np.ones(image.shape, bool), STATUS, stride=40)
    assert (prob > 0).all()
