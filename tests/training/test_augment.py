"""DiffAugment transforms against NumPy references; gradients flow through them."""
import numpy as np
import tensorflow as tf

from tf_vesselgan.training.augment import CUTOUT_FRACTION, cutout, diff_augment, flip, translate


def shifted_reference(x, dy, dx):
    """Shift by (dy, dx) with zero fill, by explicit loops over output pixels."""
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[r, c] = x[r - dy, c - dx]
    return out


def test_translate_matches_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 12, 10, 2)).astype(np.float32)
    shift = np.array([[0, 0], [2, -3], [-1, 1], [3, 3]], np.int32)
    got = translate(tf.constant(x), tf.constant(shift)).numpy()
    for i in range(4):
        np.testing.assert_array_equal(got[i], shifted_reference(x[i], *shift[i]))


def test_cutout_zeroes_one_square_in_both_channels():
    x = np.ones((2, 16, 16, 2), np.float32)
    got = cutout(tf.constant(x), tf.constant([[8, 8], [0, 15]], tf.int32)).numpy()
    half = int(16 * CUTOUT_FRACTION / 2)
    assert (got[0, 8 - half + 1:8 + half, 8 - half + 1:8 + half] == 0).all()
    assert got[0].sum() == 2 * (256 - (2 * half - 1) ** 2)
    assert (got[1, 0, 15] == 0).all() and got[1, 15, 0, 0] == 1
    np.testing.assert_array_equal(got[..., 0], got[..., 1])  # image and label move together


def test_flip_and_policy_keep_pairs_aligned_and_differentiable():
    rng = np.random.default_rng(1)
    img = rng.normal(size=(6, 16, 16)).astype(np.float32)
    pairs = tf.constant(np.stack([img, img], -1))
    flipped = flip(pairs, tf.constant([1.0, 0.0, 1.0, 0.0, 0.9, 0.1])).numpy()
    np.testing.assert_array_equal(flipped[0, ..., 0], img[0, :, ::-1])
    np.testing.assert_array_equal(flipped[1, ..., 0], img[1])

    def uniform(salt, tail):
        return tf.random.stateless_uniform([6] + list(tail), seed=[3, salt])

    with tf.GradientTape() as tape:
        tape.watch(pairs)
        out = diff_augment(pairs, "translation,cutout,flip", uniform)
        loss = tf.reduce_sum(out * out)
    grad = tape.gradient(loss, pairs)
    np.testing.assert_array_equal(out.numpy()[..., 0], out.numpy()[..., 1])
    assert float(tf.reduce_sum(tf.abs(grad))) > 0
    assert not np.allclose(out.numpy(), pairs.numpy())
    np.testing.assert_array_equal(diff_augment(pairs, "", uniform).numpy(), pairs.numpy())
