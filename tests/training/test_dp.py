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


def example_losses(critic):
    return lambda r, f, e: wgan_critic_losses(scores(critic), r, f, e, 10.0)


@pytest.mark.parametrize("arch", ["wgan-gp", "wgan-gp-sn"])
def test_vectorised_per_example_gradients_equal_a_loop(setup, arch):
    import keras

    _, real, fake, eps = setup
    keras.utils.set_random_seed(1)
    critic = build_critic(arch, 0.03, SIZE)
    critic(real[:1], training=True)  # the spectral norm's update, once, before both
    variables = critic.trainable_variables
    score = lambda x: critic(x, training=False)[0]  # noqa: E731
    losses, fast = tf.function(lambda: per_example_gradients(
        lambda r, f, e: wgan_critic_losses(score, r, f, e, 10.0), variables, (real, fake, eps)))()
    for i in range(B):
        with tf.GradientTape() as tape:
            loss = wgan_critic_losses(score, real[i:i + 1], fake[i:i + 1], eps[i:i + 1], 10.0)[0]
        np.testing.assert_allclose(losses[i].numpy(), loss.numpy(), rtol=1e-5, atol=1e-6)
        for g_fast, g_loop in zip(fast, tape.gradient(loss, variables)):
            np.testing.assert_allclose(g_fast[i].numpy(), g_loop.numpy(), rtol=1e-4, atol=1e-5)


def test_no_noise_no_clip_is_the_ordinary_gradient_and_clipping_bounds_each_example(setup):
    critic, real, fake, eps = setup
    variables = critic.trainable_variables
    _, per = per_example_gradients(example_losses(critic), variables, (real, fake, eps))
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


def test_poisson_batches_include_each_pair_with_probability_q_and_resume_identically():
    from tf_vesselgan.training.dp import poisson_batches

    pairs = np.arange(400, dtype=np.float32).reshape(400, 1)
    q, k = 0.05, 3
    draws = list(poisson_batches(pairs, q, k, seed=11).take(200))
    sizes = np.concatenate([d[1].numpy() for d in draws])
    assert sizes.shape == (600,)
    assert sizes.mean() == pytest.approx(q * 400, rel=0.05)  # 20 expected, sd of the mean 0.18
    assert sizes.var() == pytest.approx(400 * q * (1 - q), rel=0.2)  # binomial, not fixed
    counts = np.zeros(400)
    for d in draws:
        for part in np.split(d[0].numpy()[:, 0], np.cumsum(d[1].numpy())[:-1]):
            assert len(set(part)) == len(part)  # a pair at most once per sample
            counts[part.astype(int)] += 1
    assert counts.mean() / 600 == pytest.approx(q, rel=0.05)
    again = list(poisson_batches(pairs, q, k, seed=11, first_step=150).take(5))
    for a, b in zip(again, draws[150:155]):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    other = next(iter(poisson_batches(pairs, q, k, seed=12)))
    assert not np.array_equal(other[0].numpy(), draws[0][0].numpy())


def test_the_dp_critic_update_adds_seeded_noise_and_nothing_else_varies():
    """One DPWGANGP step: with σ > 0 the critic depends on the secret noise seed, with σ = 0
    it does not (the noise is what differs, and it is really added)."""
    import keras

    from tf_vesselgan.config import DPConfig, GANConfig
    from tf_vesselgan.training.gan_trainer import build_gan

    rng = np.random.default_rng(3)
    pairs = tf.constant(rng.uniform(-1, 1, (6, 96, 96, 2)).astype(np.float32))
    data = (pairs, tf.constant([3, 3], tf.int32))

    def critic_after_step(sigma, noise_seed):
        keras.utils.set_random_seed(0)
        g = GANConfig(arch="wgan-gp-sn", width=0.03, n_critic=2, batch_size=3, label_threshold=0.2,
                      dp=DPConfig(noise_multiplier=sigma, l2_clip=1.0))
        gan = build_gan(g, 96, seed=0, dp_noise_seed=noise_seed)
        gan.train_step(data)
        return np.concatenate([v.numpy().ravel() for v in gan.critic.trainable_variables])

    empty = (pairs[:3], tf.constant([0, 3], tf.int32))  # a Poisson sample may draw nobody
    gan = build_gan(GANConfig(arch="wgan-gp", width=0.03, n_critic=2, batch_size=3, label_threshold=0.2,
                              dp=DPConfig()), 96, seed=0, dp_noise_seed=5)
    assert np.isfinite(float(gan.train_step(empty)["g_loss"]))
    noisy_a, noisy_b = critic_after_step(1.0, 1), critic_after_step(1.0, 2)
    assert np.abs(noisy_a - noisy_b).max() > 1e-6
    np.testing.assert_allclose(critic_after_step(1e-9, 1), critic_after_step(1e-9, 2), atol=1e-6)


def test_calibrated_noise_is_the_smallest_that_keeps_the_planned_updates_within_the_target():
    from tf_vesselgan.training.dp import noise_for

    q, delta = 32 / 4000, 1e-5
    sigmas = {}
    for target in (10.0, 3.0, 1.0):
        for updates in (500, 3000):
            s = noise_for(target, q, updates, delta)
            assert epsilon_spent(q, s, updates, delta) <= target < epsilon_spent(q, s - 2e-3, updates, delta)
            sigmas[target, updates] = s
    assert sigmas[10.0, 3000] < sigmas[3.0, 3000] < sigmas[1.0, 3000]  # less privacy, less noise
    assert sigmas[1.0, 500] < sigmas[1.0, 3000]  # more updates, more noise
    with pytest.raises(ValueError, match="no noise multiplier"):
        noise_for(1e-6, q, 3000, delta, limit=8.0)
