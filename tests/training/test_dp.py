"""DP-SGD building blocks: vectorised per-example WGAN-GP critic gradients equal a
brute-force loop; with no noise and no clipping the DP gradient is the ordinary one; the
noise has the configured standard deviation; ε equals dp-accounting's and is monotone."""
import numpy as np
import pytest
import tensorflow as tf

from tf_vesselgan.models.critic import build_critic
from tf_vesselgan.training.dp import (clip_sum_noise, epsilon_spent, per_example_gradients, steps_within,
                                      wgan_critic_losses)

B, SIZE = 4, 32


@pytest.fixture(scope="module")
def setup():
    import keras

    keras.utils.set_random_seed(0)
    critic = build_critic("wgan-gp", 0.03, SIZE)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (B, SIZE, SIZE, 2)).astype(np.float32))
    fake = tf.constant(rng.uniform(-1, 1, (B, SIZE, SIZE, 2)).astype(np.float32))
    eps = tf.constant(rng.uniform(0, 1, (B, 1, 1, 1)).astype(np.float32))
    return critic, real, fake, eps


def scores(critic):
    return lambda x: critic(x, training=True)[0]


def test_vectorised_per_example_gradients_equal_a_loop(setup):
    critic, real, fake, eps = setup
    variables = critic.trainable_variables
    fast = per_example_gradients(lambda: wgan_critic_losses(scores(critic), real, fake, eps, 10.0), variables)
    for i in range(B):
        with tf.GradientTape() as tape:
            loss = wgan_critic_losses(scores(critic), real[i:i + 1], fake[i:i + 1], eps[i:i + 1], 10.0)[0]
        for g_fast, g_loop in zip(fast, tape.gradient(loss, variables)):
            np.testing.assert_allclose(g_fast[i].numpy(), g_loop.numpy(), rtol=1e-4, atol=1e-5)


def test_no_noise_no_clip_is_the_ordinary_gradient_and_clipping_bounds_each_example(setup):
    critic, real, fake, eps = setup
    variables = critic.trainable_variables
    per = per_example_gradients(lambda: wgan_critic_losses(scores(critic), real, fake, eps, 10.0), variables)
    dp, norms = clip_sum_noise(per, l2_clip=np.inf, noise_multiplier=0.0, expected_batch=B, seed=[0, 0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(wgan_critic_losses(scores(critic), real, fake, eps, 10.0))
    for a, b in zip(dp, tape.gradient(loss, variables)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    clip = float(tf.reduce_min(norms)) / 2  # every example gets clipped
    clipped, _ = clip_sum_noise(per, l2_clip=clip, noise_multiplier=0.0, expected_batch=1.0, seed=[0, 0])
    total = np.sqrt(sum(float(tf.reduce_sum(tf.square(g))) for g in clipped))
    assert total <= B * clip * (1 + 1e-5)  # the sum of B vectors of norm C


def test_noise_has_the_configured_standard_deviation():
    zeros = [tf.zeros([8, 200, 50])]  # 10,000 coordinates, gradients all 0
    out, _ = clip_sum_noise(zeros, l2_clip=0.5, noise_multiplier=1.3, expected_batch=2.0, seed=[7, 1])
    values = out[0].numpy().ravel()
    want = 1.3 * 0.5 / 2.0
    assert abs(values.mean()) < 4 * want / np.sqrt(values.size)
    assert values.std() == pytest.approx(want, rel=0.03)
    again, _ = clip_sum_noise(zeros, l2_clip=0.5, noise_multiplier=1.3, expected_batch=2.0, seed=[7, 1])
    np.testing.assert_array_equal(again[0].numpy(), out[0].numpy())  # seeded


def test_epsilon_equals_dp_accounting_and_is_monotone():
    import dp_accounting

    q, sigma, steps, delta = 0.0064, 1.1, 2000, 1e-5
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps))
    assert epsilon_spent(q, sigma, steps, delta) == pytest.approx(acc.get_epsilon(delta), rel=1e-12)
    eps_steps = [epsilon_spent(q, sigma, s, delta) for s in (10, 100, 1000, 5000)]
    assert eps_steps == sorted(eps_steps) and eps_steps[0] < eps_steps[-1]
    eps_sigma = [epsilon_spent(q, s, 1000, delta) for s in (0.8, 1.0, 1.5, 3.0)]
    assert eps_sigma == sorted(eps_sigma, reverse=True)
    assert epsilon_spent(q, sigma, 0, delta) == 0.0
    n = steps_within(3.0, q, sigma, delta)
    assert epsilon_spent(q, sigma, n, delta) <= 3.0 < epsilon_spent(q, sigma, n + 1, delta)
