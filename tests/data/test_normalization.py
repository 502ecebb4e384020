"""One normalisation for every path: each mode against its formula in NumPy, arrays and
tensors alike, per patch over the given axes, and unknown modes refused."""
import numpy as np
import pytest
import tensorflow as tf

from tf_vesselgan.data.normalization import normalize


@pytest.fixture
def tiles():
    rng = np.random.default_rng(0)
    t = rng.normal(100, 20, (3, 8, 8)).astype(np.float32)
    t[1] = 7.0  # a flat patch
    return t


def test_each_mode_matches_its_formula_per_patch(tiles):
    lo, hi = tiles.min(axis=(1, 2), keepdims=True), tiles.max(axis=(1, 2), keepdims=True)
    want_minmax = 2 * (tiles - lo) / np.maximum(hi - lo, 1e-8) - 1
    m, s = tiles.mean(axis=(1, 2), keepdims=True), tiles.std(axis=(1, 2), keepdims=True)
    want_z = (tiles - m) / np.maximum(s, 1e-6)
    np.testing.assert_allclose(normalize(tiles, "minmax"), want_minmax, atol=1e-5)
    np.testing.assert_allclose(normalize(tiles, "per_patch"), want_z, atol=1e-4)
    np.testing.assert_allclose(normalize(tiles, "global", 90.0, 10.0), (tiles - 90) / 10, atol=1e-5)
    assert np.all(normalize(tiles, "minmax")[1] == -1.0)  # a flat patch maps to -1


def test_arrays_tensors_and_channel_axes_agree(tiles):
    for mode in ("minmax", "per_patch", "global"):
        a = normalize(tiles, mode, 90.0, 10.0)
        assert isinstance(a, np.ndarray)
        t = normalize(tf.constant(tiles[..., None]), mode, 90.0, 10.0, axes=(1, 2))
        assert isinstance(t, tf.Tensor)
        np.testing.assert_allclose(t.numpy()[..., 0], a, atol=1e-6)
        np.testing.assert_allclose(normalize(tiles[0], mode, 90.0, 10.0), a[0], atol=1e-6)  # one patch


def test_unknown_mode_is_refused(tiles):
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize(tiles, "zscore")
