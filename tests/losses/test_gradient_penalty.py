"""Gradient penalty against NumPy on critics whose input gradient is known in closed form."""
import numpy as np
import pytest
import tensorflow as tf

from tf_vesselgan.losses.adversarial import feature_matching_loss, wasserstein_critic_loss
from tf_vesselgan.losses.gradient_penalty import gradient_penalty


def numpy_gp(grads):
    norms = np.sqrt((grads.reshape(len(grads), -1) ** 2).sum(1) + 1e-10)
    return np.mean((norms - 1) ** 2)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(6, 4, 4, 2)).astype(np.float32)
    fake = rng.normal(size=(6, 4, 4, 2)).astype(np.float32)
    eps = rng.uniform(size=(6, 1, 1, 1)).astype(np.float32)
    return real, fake, eps


def test_linear_critic_gradient_is_its_weight(batch):
    real, fake, eps = batch
    w = np.random.default_rng(1).normal(size=(4, 4, 2)).astype(np.float32) * 0.1

    @tf.function  # graph mode, as in training
    def gp(r, f, e):
        return gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None], r, f, e)

    expected = numpy_gp(np.broadcast_to(w, real.shape))
    assert float(gp(real, fake, eps)) == pytest.approx(expected, rel=1e-5)


def test_quadratic_critic_gradient_is_the_interpolate(batch):
    real, fake, eps = batch

    @tf.function
    def gp(r, f, e):
        return gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3])[:, None], r, f, e)

    x_hat = eps * real + (1 - eps) * fake  # per-sample ε: each row has its own interpolate
    assert float(gp(real, fake, eps)) == pytest.approx(numpy_gp(x_hat), rel=1e-5)


def test_zero_gradient_stays_finite():
    z = tf.zeros((2, 3, 3, 1))
    with tf.GradientTape() as tape:
        x = tf.Variable(tf.ones((2, 3, 3, 1)))
        gp = gradient_penalty(lambda t: tf.zeros((2, 1)) * tf.reduce_sum(t * x), z, z, tf.ones((2, 1, 1, 1)))
    assert float(gp) == pytest.approx(1.0, abs=1e-4)  # (0 − 1)², epsilon inside the sqrt
    g = tape.gradient(gp, x)
    assert g is None or np.isfinite(g.numpy()).all()


def test_wasserstein_and_feature_matching_formulas():
    real, fake = tf.constant([[1.0], [3.0]]), tf.constant([[0.5], [0.5]])
    assert float(wasserstein_critic_loss(real, fake)) == pytest.approx(0.5 - 2.0)
    a = np.random.default_rng(0).normal(size=(4, 3, 3, 5)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(4, 3, 3, 5)).astype(np.float32)
    ref = np.abs(a.mean((0, 1, 2)) - b.mean((0, 1, 2))).mean()
    assert float(feature_matching_loss(a, b)) == pytest.approx(ref, rel=1e-5)
