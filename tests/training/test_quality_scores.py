"""Snapshot scores: which way each improves, and that GAN-train (train on synthetic, test
on real) ranks pairs whose labels mark the vessels above pairs whose labels do not."""
import csv

import keras
import numpy as np
import pytest

from tf_vesselgan.training.snapshots import SNAPSHOT_FIELDS, GANTestScore, GANTrainScore, best_snapshot

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


def bright_is_vessel_run(folder, normalization="minmax"):
    """A U-net run folder whose "U-net" calls every pixel above 0.5 (after min-max) vessel."""
    import json

    x = keras.Input((None, None, 1))
    y = keras.layers.Conv2D(1, 1, activation="sigmoid", kernel_initializer=keras.initializers.Constant(40.0),
                            bias_initializer=keras.initializers.Constant(-20.0))(x)
    folder.mkdir(parents=True)
    keras.Model(x, y).save(str(folder / "unet.keras"))
    (folder / "run.json").write_text(json.dumps({"kind": "unet", "normalization": normalization, "mean": 0.0,
                                                 "std": 1.0, "patch_size": SIZE, "threshold": 0.5}))
    return folder


def test_gan_test_scores_labels_that_mark_what_a_segmenter_sees(tmp_path):
    images, labels = toy_pairs(0)
    score = GANTestScore(bright_is_vessel_run(tmp_path / "unet"), n=64, seed=1)
    assert score(table_generator(images, labels), 0.0) > 0.9
    assert score(table_generator(images, np.roll(labels, 12, axis=(1, 2))), 0.0) < 0.1


def test_a_quality_unet_on_global_z_scores_is_refused_up_front(tmp_path):
    from tf_vesselgan.errors import UserError
    from tf_vesselgan.training.snapshots import check_quality_unet

    with pytest.raises(UserError, match="no trained U-net"):
        check_quality_unet(tmp_path / "none")
    with pytest.raises(UserError, match="global z-scoring"):
        check_quality_unet(bright_is_vessel_run(tmp_path / "g", "global"))
    check_quality_unet(bright_is_vessel_run(tmp_path / "m"))


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


def test_score_curves_can_be_drawn_against_epochs_for_runs_on_machines_of_different_speed(tmp_path):
    """benchmarks/score_snapshots.py --x epoch: the figure's x values are the CSVs' epochs,
    for the run and for each --compare curve; an unknown column is a ValueError."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tests.conftest import load_benchmark

    bench = load_benchmark("score_snapshots")
    rows = [{"epoch": 16, "machine_minutes": 7.2, "gan_train": 0.4, "source": "run"},
            {"epoch": 32, "machine_minutes": 14.7, "gan_train": 0.5, "source": "rescored"}]
    other = tmp_path / "other.csv"
    with open(other, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows([dict(r, machine_minutes=r["machine_minutes"] / 2) for r in rows])
    for x, column in (("epoch", "epoch"), ("minutes", "machine_minutes")):
        label, pts = bench.compared(f"fast={other}", "gan_train", x)
        assert label == "fast" and [p[0] for p in pts] == [float(r[column]) / (2 if x == "minutes" else 1)
                                                            for r in rows]
        fig, ax = plt.subplots()
        bench.draw(ax, rows, "gan_train", "slow", [(label, pts)], x)
        drawn = {float(v) for line in ax.get_lines() for v in line.get_xdata()}
        plt.close(fig)
        assert drawn == {p[0] for p in pts} | {float(r[column]) for r in rows}
    (tmp_path / "minutes_only.csv").write_text("machine_minutes,gan_train\n1.0,0.3\n")
    with pytest.raises(ValueError, match="by epoch"):
        bench.compared(f"old={tmp_path / 'minutes_only.csv'}", "gan_train", "epoch")
