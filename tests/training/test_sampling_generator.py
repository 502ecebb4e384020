"""The sampling generator: weight average, recalibrated batch norm, calibrated label threshold."""
import numpy as np
import pytest
import tensorflow as tf

from tests.training.test_gan_steps import toy_pairs
from tf_vesselgan.config import GANConfig
from tf_vesselgan.models.generator import build_generator
from tf_vesselgan.training.ema import GeneratorEMA, ema_reference
from tf_vesselgan.training.finalize import (batch_norm_layers, calibrate_threshold, fixed_noise_images, pixel_std,
                                            recalibrate_batch_norm, sampling_copy)
from tf_vesselgan.training.gan_trainer import build_ema_generator, build_gan


def test_recalibrated_eval_mode_matches_batch_statistics():
    gen = build_generator(16, 0.03, 96)
    for layer in gen.layers:  # a generator whose activations are far from N(0, 1)
        if layer.name.startswith("up") or layer.name == "project":
            layer.kernel.assign(layer.kernel * 3.0 + 0.05)
    z = tf.random.stateless_normal([512, 16], seed=[0, 1])
    batch_stats = gen(z, training=True).numpy()
    for layer in batch_norm_layers(gen):  # undo the moving-average update of that call
        layer.moving_mean.assign(tf.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(tf.ones_like(layer.moving_variance))
    before = np.abs(gen(z, training=False).numpy() - batch_stats).mean()
    recalibrate_batch_norm(gen, seed=5, batches=8, batch=256)
    after = np.abs(gen(z, training=False).numpy() - batch_stats).mean()
    assert after < 0.02 < before
    assert all(layer.momentum == 0.99 for layer in batch_norm_layers(gen))


def test_sampling_copy_leaves_the_source_alone():
    gen = build_generator(16, 0.03, 96)
    w = [v.copy() for v in gen.get_weights()]
    copy = sampling_copy(gen, seed=0)
    for a, b in zip(w, gen.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert copy is not gen
    assert pixel_std(fixed_noise_images(copy, n=32)) > 0.0


def test_calibrated_threshold_matches_the_fraction():
    labels = np.random.default_rng(0).uniform(-1, 1, size=(64, 32, 32))
    for f in (0.001, 0.0038, 0.05, 0.4):
        t = calibrate_threshold(labels, f)
        assert (labels > t).mean() == pytest.approx(f, rel=0.02, abs=2e-5)
    assert -1.0 <= calibrate_threshold(labels, 0.0) <= 1.0


def test_ema_callback_equals_a_brute_force_average():
    cfg = GANConfig(arch="wgan-gp", width=0.03, n_critic=2, ema_decay=0.9)
    gan = build_gan(cfg, 96, seed=0)
    ema = build_ema_generator(gan, cfg, 96)
    kernel = lambda m: m.get_layer("up1").kernel.numpy().copy()  # noqa: E731
    seen = [kernel(gan.generator)]

    import keras

    class Keep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(kernel(gan.generator))

    ds = tf.data.Dataset.from_tensor_slices(toy_pairs(32)).batch(8, drop_remainder=True)
    cb = GeneratorEMA(gan.generator, ema, 0.9, lambda: gan.g_optimizer.iterations)  # as the trainer passes it
    gan.fit(ds, epochs=1, verbose=0, callbacks=[Keep(), cb])
    assert len(seen) == 5
    np.testing.assert_allclose(kernel(ema), ema_reference(seen, 0.9), rtol=1e-5, atol=1e-7)
    assert not np.allclose(kernel(ema), seen[-1])


def test_signed_label_coding_reaches_the_critic_as_plus_minus_one():
    from tf_vesselgan.training.gan_trainer import label_coded

    pairs = np.zeros((2, 4, 4, 2), np.float32)
    pairs[..., 0] = np.linspace(-1, 1, 16).reshape(4, 4)
    pairs[0, 1, 1, 1] = 1.0
    ds = tf.data.Dataset.from_tensors(pairs)
    unit = next(iter(label_coded(ds, "unit"))).numpy()
    signed = next(iter(label_coded(ds, "signed"))).numpy()
    np.testing.assert_array_equal(unit, pairs)
    np.testing.assert_array_equal(signed[..., 0], pairs[..., 0])
    assert set(np.unique(signed[..., 1])) == {-1.0, 1.0} and signed[0, 1, 1, 1] == 1.0


def test_label_blur_joins_isolated_label_pixels_and_keeps_the_image(tmp_path):
    import dataclasses

    import keras
    from scipy import ndimage

    from tf_vesselgan.training.finalize import finalize_generator

    gen = build_generator(16, 0.03, 96)
    z = tf.random.stateless_normal([8, 16], seed=[0, 2])
    cfg = GANConfig(arch="dcgan", width=0.03, label_threshold="auto", sample_bn="moving")
    plain, _, _ = finalize_generator(gen, cfg, seed=0, real_fraction=0.01)
    blurred, thr, info = finalize_generator(gen, dataclasses.replace(cfg, label_blur=1.0), seed=0, real_fraction=0.01)
    assert info["label_blur"] == 1.0
    a, b = plain(z, training=False).numpy(), blurred(z, training=False).numpy()
    np.testing.assert_allclose(b[..., 0], a[..., 0], atol=1e-6)  # the image channel passes unchanged
    inner = (slice(None), slice(5, -5), slice(5, -5))  # away from the zero padding
    want = ndimage.gaussian_filter(a[..., 1], (0, 1.0, 1.0), truncate=4.0)
    np.testing.assert_allclose(b[..., 1][inner], want[inner], atol=1e-5)
    parts = [ndimage.label(m)[1] for m in (a[..., 1] > calibrate_threshold(a[..., 1], 0.01), b[..., 1] > thr)]
    assert parts[1] < parts[0]  # at the same vessel fraction, fewer and larger components
    blurred.save(str(tmp_path / "g.keras"))
    loaded = keras.models.load_model(str(tmp_path / "g.keras"), compile=False)
    np.testing.assert_allclose(loaded(z, training=False).numpy(), b, atol=1e-6)


def test_sample_similarity_sees_the_same_structure_at_different_brightness():
    from tf_vesselgan.training.finalize import sample_similarity

    rng = np.random.default_rng(0)
    independent = rng.normal(size=(64, 24, 24))
    pattern = rng.normal(size=(24, 24))
    gain, offset = rng.uniform(0.2, 1.0, (64, 1, 1)), rng.uniform(-0.5, 0.5, (64, 1, 1))
    alike = gain * pattern + offset  # a partial collapse: one structure, many brightnesses
    assert abs(sample_similarity(independent)) < 0.02
    assert sample_similarity(alike) == pytest.approx(1.0)
    assert alike.std(axis=0).mean() > 0.2  # which per-pixel std does not flag


def test_collapse_warning_names_a_full_and_a_partial_collapse():
    from tf_vesselgan.config import GANConfig
    from tf_vesselgan.training.snapshots import collapse_warning

    g = GANConfig()
    assert collapse_warning({"collapse_std": 0.3, "sample_similarity": 0.1}, g) is None
    assert "look alike" in collapse_warning({"collapse_std": 0.3, "sample_similarity": 0.6}, g)
    assert "collapsed" in collapse_warning({"collapse_std": 0.01, "sample_similarity": 0.99}, g)
    strict = GANConfig(collapse_similarity_ceiling=0.05)
    assert "look alike" in collapse_warning({"collapse_std": 0.3, "sample_similarity": 0.1}, strict)


def test_label_floor_keeps_labels_only_on_bright_pixels_and_survives_save_and_export(tmp_path):
    import dataclasses

    import keras

    from tf_vesselgan.training.finalize import finalize_generator

    gen = build_generator(16, 0.03, 96)
    z = tf.random.stateless_normal([8, 16], seed=[0, 3])
    cfg = GANConfig(arch="dcgan", width=0.03, label_threshold="auto", sample_bn="moving")
    plain, _, _ = finalize_generator(gen, cfg, seed=0, real_fraction=0.01)
    floored, thr, info = finalize_generator(gen, cfg, seed=0, real_fraction=0.01, label_floor=0.6)
    assert info["label_min_intensity"] == 0.6
    a, b = plain(z, training=False).numpy(), floored(z, training=False).numpy()
    np.testing.assert_allclose(b[..., 0], a[..., 0], atol=1e-6)  # the image passes unchanged
    lo, hi = a[..., 0].min(axis=(1, 2), keepdims=True), a[..., 0].max(axis=(1, 2), keepdims=True)
    bright = (a[..., 0] - lo) / (hi - lo) >= 0.6
    assert 0.02 < bright.mean() < 0.5
    np.testing.assert_allclose(b[..., 1], np.where(bright, a[..., 1], -1.0), atol=1e-6)
    labels = b[..., 1] > thr
    assert labels.any() and not (labels & ~bright).any()  # the recalibrated threshold labels bright pixels only
    assert abs(info["sample_label_fraction"] - 0.01) < 0.005  # and still matches the real fraction
    floored.save(str(tmp_path / "g.keras"))  # a registered layer: loads without custom_objects
    loaded = keras.models.load_model(str(tmp_path / "g.keras"), compile=False)
    np.testing.assert_allclose(loaded(z, training=False).numpy(), b, atol=1e-6)
    assert finalize_generator(gen, dataclasses.replace(cfg, label_min_intensity=0.9), seed=0, real_fraction=0.01,
                              label_floor=None)[2].get("label_min_intensity") is None  # resolved by the caller


def test_label_floor_of_reads_the_number_or_the_runs_calibrated_floor():
    from tf_vesselgan.training.finalize import label_floor_of

    assert label_floor_of(GANConfig(), {}) is None
    assert label_floor_of(GANConfig(label_min_intensity=0.5), {"real_label_floor": 0.9}) == 0.5
    assert label_floor_of(GANConfig(label_min_intensity="auto"), {"real_label_floor": 0.93}) == 0.93
    with pytest.raises(ValueError, match="real label floor"):
        label_floor_of(GANConfig(label_min_intensity="auto"), {})


def test_a_scored_runs_best_snapshot_gets_a_floor_added_after_it_was_saved(tmp_path):
    import json

    from tf_vesselgan.training.finalize import LabelIntensityFloor, finalize_generator
    from tf_vesselgan.training.run_models import save_generator

    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    cfg = GANConfig(arch="dcgan", width=0.03, label_threshold="auto", sample_bn="moving", quality_score="fid")
    snap, thr, _ = finalize_generator(build_generator(16, 0.03, 96), cfg, seed=0, real_fraction=0.01)
    snap.save(str(run / "snapshots" / "epoch_00002.keras"))
    (run / "snapshots.csv").write_text(f"epoch,label_threshold,fid,file\n2,{thr},0.5,snapshots/epoch_00002.keras\n")
    save_generator(snap, cfg, 0, run, 0.01, label_floor=0.6)
    status = json.loads((run / "run.json").read_text())["sampling"]
    assert status["best_snapshot"] == "snapshots/epoch_00002.keras" and status["label_min_intensity"] == 0.6
    saved = __import__("keras").models.load_model(str(run / "generator.keras"), compile=False)
    assert any(isinstance(layer, LabelIntensityFloor) for layer in saved.layers)
    z = tf.random.stateless_normal([256, 16], seed=[0, 104729])
    label = saved(z, training=False).numpy()[..., 1]
    assert status["label_threshold"] != thr and abs((label > status["label_threshold"]).mean() - 0.01) < 0.005
