"""Snapshot scores: which way each improves, and that GAN-train (train on synthetic, test
on real) ranks pairs whose labels mark the vessels above pairs whose labels do not."""
import csv

import keras
import numpy as np
import pytest

from tf_vesselgan.training.snapshots import SNAPSHOT_FIELDS, GANTrainScore, _dice, best_snapshot

SIZE, K = 32, 16


def toy_pairs(seed=0):
    """K images with one bright disc on noisy tissue, labels = the disc, in [-1, 1] / {0, 1}."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    images = rng.normal(-0.5, 0.1, (K, SIZE, SIZE)).astype(np.float32)
    labels = np.zeros((K, SIZE, SIZE), np.uint8)
    for k in range(K):
        cy, cx = rng.integers(6, SIZE - 6, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
        images[k][disc] = 0.9
        labels[k][disc] = 1
    return images, labels


class _Table(keras.layers.Layer):
    """Noise → one of K fixed pairs (the argmax of the first K noise entries)."""

    def __init__(self, pairs, **kw):
        super().__init__(**kw)
        self.pairs = keras.ops.convert_to_tensor(pairs)

    def call(self, z):
        pick = keras.ops.one_hot(keras.ops.argmax(z[:, :K], axis=-1), K)
        return keras.ops.einsum("bk,khwc->bhwc", pick, self.pairs)


def table_generator(images, labels):
    pairs = np.stack([images, 2.0 * labels - 1.0], axis=-1).astype(np.float32)
    z = keras.Input((K + 4,))
    return keras.Model(z, _Table(pairs)(z))


def test_gan_train_ranks_teaching_pairs_first():
    images, labels = toy_pairs(0)
    real = toy_pairs(1)
    score = GANTrainScore(lambda: real, n=256, seed=3, width=0.1, steps=60, learning_rate=3e-3, batch_size=16)
    right = score(table_generator(images, labels), 0.0)
    wrong = score(table_generator(images, np.roll(labels, 12, axis=(1, 2))), 0.0)
    assert right > 0.5 > 0.1 > wrong
    assert score(table_generator(images, labels), 0.0) == pytest.approx(right, abs=0.05)  # seeded procedure


def test_dice_of_patch_sets():
    a = np.zeros((2, 4, 4), bool)
    b = a.copy()
    assert _dice(a, b) == 1.0
    a[0, 0, :2] = True
    b[0, 0, 1:3] = True
    assert _dice(a, b) == pytest.approx(0.5)


def test_best_snapshot_follows_the_direction_of_each_score(tmp_path):
    rows = [{"epoch": 1, "fid": 3.0, "gan_train": 0.2, "file": "a"},
            {"epoch": 2, "fid": 1.0, "gan_train": 0.1, "file": "b"},
            {"epoch": 3, "fid": 2.0, "gan_train": 0.4, "file": "c"}]
    with open(tmp_path / "snapshots.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SNAPSHOT_FIELDS)
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in SNAPSHOT_FIELDS} for r in rows)
    assert best_snapshot(tmp_path, "fid")["file"] == "b"
    assert best_snapshot(tmp_path, "gan_train")["file"] == "c"
    assert best_snapshot(tmp_path, "gan_test") is None
