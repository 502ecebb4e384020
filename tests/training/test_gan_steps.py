"""Graph-mode GAN train steps: one trace, SN ≈ 1, mirrored == single device, toy behaviour."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import free_ports

from tf_vesselgan.config import GANConfig
from tf_vesselgan.training.gan_trainer import build_gan

WIDTH = 0.03


def toy_pairs(n, seed=0):
    """Real pairs: a bright disc (label 1 inside) on a dark background, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    out = np.empty((n, 96, 96, 2), np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(30, 66), rng.uniform(30, 66), rng.uniform(6, 14)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        out[i, ..., 0] = np.where(disc, 0.8, -0.8) + rng.normal(0, 0.05, (96, 96))
        out[i, ..., 1] = disc
    return out


def gan_for(arch, seed=0, **kw):
    cfg = GANConfig(arch=arch, width=WIDTH, n_critic=2, **kw)
    return build_gan(cfg, 96, seed)


@pytest.mark.parametrize("arch", ["dcgan", "wgan-gp", "wgan-gp-sn"])
def test_train_step_is_traced_once(arch):
    gan = gan_for(arch)
    traces, step = [], gan.train_step

    def counted(data):  # Python runs only while TensorFlow traces
        traces.append(1)
        return step(data)

    gan.train_step = counted
    per_step = 4 if arch == "dcgan" else 8
    ds = tf.data.Dataset.from_tensor_slices(toy_pairs(4 * per_step)).batch(per_step, drop_remainder=True)
    gan.fit(ds, epochs=2, verbose=0)
    assert not gan.run_eagerly
    assert len(traces) == 1
    assert int(gan.g_optimizer.iterations) == 8
    assert int(gan.d_optimizer.iterations) == (8 if arch == "dcgan" else 16)


def test_spectral_norm_kernels_have_unit_singular_value_after_training():
    gan = gan_for("wgan-gp-sn")
    ds = tf.data.Dataset.from_tensor_slices(toy_pairs(24)).batch(8, drop_remainder=True)
    gan.fit(ds, epochs=2, verbose=0)
    sn = [l for l in gan.critic.layers if type(l).__name__ == "SpectralNormalization"]
    assert len(sn) == 5
    for layer in sn:
        k = layer.kernel.numpy()
        sigma = np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0]
        assert sigma == pytest.approx(1.0, abs=0.05), layer.name


def _weights_after_one_step(strategy, arch, init_g, init_d, data):
    with strategy.scope():
        gan = build_gan(GANConfig(arch=arch, width=WIDTH, n_critic=2), 96, seed=3,
                        synchronized_bn=strategy.num_replicas_in_sync > 1)
    gan.generator.set_weights(init_g)
    gan.critic.set_weights(init_d)
    ds = tf.data.Dataset.from_tensor_slices(data).batch(len(data))
    gan.fit(ds, epochs=1, verbose=0)
    return gan.generator.get_weights(), gan.critic.get_weights()


def test_mirrored_step_equals_single_device_step():
    ref = gan_for("wgan-gp", seed=3)
    init_g, init_d = ref.generator.get_weights(), ref.critic.get_weights()
    data = toy_pairs(8, seed=5)  # n_critic 2 × batch 4; each replica gets 4 rows
    single = _weights_after_one_step(tf.distribute.get_strategy(), "wgan-gp", init_g, init_d, data)
    mirrored = _weights_after_one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), "wgan-gp",
                                       init_g, init_d, data)
    moved = 0
    for a_list, b_list, init in ((single[0], mirrored[0], init_g), (single[1], mirrored[1], init_d)):
        for a, b, w0 in zip(a_list, b_list, init):
            # Adam's first step is lr·g/(|g|+ε): for |g| near ε a summation-order difference
            # of 1e-9 in g moves the weight by a fraction of lr (1e-4); half a step is the bound
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-5)
            moved += not np.allclose(a, w0)
    assert moved > 10  # the step really changed the weights


def test_reused_critic_reals_equal_a_fresh_step_whose_batches_are_all_the_same():
    """gan.critic_reals: reuse (the paper's code) hands every critic update of a step the
    same B real pairs; a fresh step reads update i from rows i, i + n_critic, ..., so on
    each row repeated n_critic times it must end with the same weights."""
    ref = gan_for("wgan-gp", seed=3)
    init_g, init_d = ref.generator.get_weights(), ref.critic.get_weights()
    data = toy_pairs(4, seed=5)
    ends = {}
    for reals, batch in (("reuse", data), ("fresh", np.repeat(data, 2, axis=0)), ("fresh", np.tile(data, (2, 1, 1, 1)))):
        gan = gan_for("wgan-gp", seed=3, critic_reals=reals)
        gan.generator.set_weights(init_g)
        gan.critic.set_weights(init_d)
        gan.fit(tf.data.Dataset.from_tensor_slices(batch).batch(len(batch)), epochs=1, verbose=0)
        ends.setdefault(reals, []).append(gan.critic.get_weights() + gan.generator.get_weights())
    for a, b in zip(ends["reuse"][0], ends["fresh"][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b, atol=1e-6) for a, b in zip(ends["reuse"][0], ends["fresh"][1]))  # other rows


def test_wgan_critic_learns_to_separate_real_from_fake():
    gan = gan_for("wgan-gp", g_learning_rate=1e-9)  # generator (almost) frozen
    ds = tf.data.Dataset.from_tensor_slices(toy_pairs(64)).batch(16, drop_remainder=True)
    hist = gan.fit(ds, epochs=3, verbose=0).history
    assert hist["wasserstein"][-1] > 0
    assert hist["d_real"][-1] > hist["d_fake"][-1]
    assert hist["d_loss"][-1] < hist["d_loss"][0]


def test_dcgan_discriminator_tells_real_from_fake():
    gan = gan_for("dcgan", g_learning_rate=1e-9)
    ds = tf.data.Dataset.from_tensor_slices(toy_pairs(64)).batch(8, drop_remainder=True)
    hist = gan.fit(ds, epochs=2, verbose=0).history
    assert hist["d_real"][-1] > hist["d_fake"][-1]
    assert hist["d_loss"][-1] < hist["d_loss"][0]


def bright_is_vessel_teacher():
    """A stand-in label teacher: vessel probability sigmoid(8 · image), image in [-1, 1]."""
    x = keras.Input((96, 96, 1))
    return keras.Model(x, keras.layers.Activation("sigmoid")(keras.layers.Rescaling(8.0)(x)))


@pytest.mark.parametrize("arch,coding", [("dcgan", "signed"), ("wgan-gp", "unit")])
def test_label_teacher_pulls_the_label_channel_towards_what_it_sees_in_the_image(arch, coding):
    """Against the same GAN whose teacher loss has (almost) no weight: the same data,
    noise and initial weights, so the difference is the teacher's pull alone."""
    final = {}
    for weight in (1e-6, 10.0):
        keras.utils.set_random_seed(0)  # the same initial weights
        gan = gan_for(arch, label_teacher_steps=1, label_teacher_weight=weight, label_coding=coding)
        teacher = bright_is_vessel_teacher()
        gan.set_label_teacher(teacher)
        per_step = 8 if arch == "dcgan" else 16
        ds = tf.data.Dataset.from_tensor_slices(toy_pairs(6 * per_step)).batch(per_step, drop_remainder=True)
        final[weight] = gan.fit(ds, epochs=6, verbose=0).history["label_teacher"][-1]
        assert not teacher.trainable_weights  # frozen: nothing of it is trained
    assert final[10.0] < 0.96 * final[1e-6]


def test_label_teacher_loss_leaves_the_image_without_gradient():
    """The teacher's probability is a fixed target: only the label channel is pulled."""
    gan = gan_for("dcgan", label_teacher_steps=1, label_coding="signed")
    gan.set_label_teacher(bright_is_vessel_teacher())
    fake = tf.Variable(np.random.default_rng(0).uniform(-0.9, 0.9, (2, 96, 96, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = gan._teacher_loss(fake)
    grad = tape.gradient(loss, fake).numpy()
    assert np.abs(grad[..., 0]).max() == 0.0 and np.abs(grad[..., 1]).max() > 0.0


def test_a_label_teacher_weight_without_a_teacher_is_refused_at_the_first_step():
    gan = gan_for("dcgan", label_teacher_steps=1)
    ds = tf.data.Dataset.from_tensor_slices(toy_pairs(8)).batch(8, drop_remainder=True)
    with pytest.raises(ValueError, match="set_label_teacher"):
        gan.fit(ds, epochs=1, verbose=0)


def test_straight_through_threshold_passes_gradient():
    from tf_vesselgan.training.gan import threshold_labels_ste

    x = tf.Variable(np.array([[[[0.1, 0.9], [0.2, 0.5]]]], np.float32))
    with tf.GradientTape() as tape:
        y = threshold_labels_ste(x, 0.8)
        loss = tf.reduce_sum(y * tf.constant([[[[2.0, 3.0], [2.0, 3.0]]]]))
    assert y.numpy()[..., 1].tolist() == [[[1.0, 0.0]]]
    assert tape.gradient(loss, x).numpy()[..., 1].tolist() == [[[3.0, 3.0]]]


@pytest.mark.slow  # two processes, ~1 min; the mirrored test above covers the step in the default run
def test_multiworker_step_equals_single_device_step(tmp_path):
    """Two worker processes on 127.0.0.1 (TF_CONFIG) give the single-device weights."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    ref = gan_for("wgan-gp", seed=3)
    init_g, init_d = ref.generator.get_weights(), ref.critic.get_weights()
    data = toy_pairs(8, seed=5)
    init = init_g + init_d
    np.savez(tmp_path / "in.npz", data=data, width=WIDTH, n_generator=len(init_g), n_weights=len(init),
             **{f"w{i}": w for i, w in enumerate(init)})
    single = _weights_after_one_step(tf.distribute.get_strategy(), "wgan-gp", init_g, init_d, data)
    single = single[0] + single[1]

    script = Path(__file__).with_name("multiworker_step.py")
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}),
                   CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / "in.npz"), str(tmp_path)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        try:
            out, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, out[-3000:]
    moved = 0
    for index in range(2):
        z = np.load(tmp_path / f"worker{index}.npz")
        assert int(z["replicas"]) == 2
        for i, (a, w0) in enumerate(zip(single, init)):
            np.testing.assert_allclose(z[f"w{i}"], a, rtol=1e-4, atol=5e-5)
            moved += not np.allclose(z[f"w{i}"], w0)
    assert moved > 20
