"""WGAN-GP gradient penalty (Gulrajani et al. 2017)."""
from __future__ import annotations

import tensorflow as tf


def gradient_penalty(critic_fn, real, fake, epsilon, norm_epsilon: float = 1e-10):
    """Mean over samples of `gradient_penalty_per_example` (the WGAN-GP term without λ)."""
    return tf.reduce_mean(gradient_penalty_per_example(critic_fn, real, fake, epsilon, norm_epsilon))


def gradient_penalty_per_example(critic_fn, real, fake, epsilon, norm_epsilon: float = 1e-10):
    """(‖∇ₓ D(x̂)‖₂ − 1)² per sample, x̂ = ε·real + (1−ε)·fake.

    Args:
        critic_fn: x → scores [N, 1].
        real, fake: [N, H, W, C].
        epsilon: [N, 1, 1, 1] drawn from U(0, 1), one per sample.
        norm_epsilon: added inside the square root so the norm's gradient is finite
            at zero (TF-GAN does the same).

    Returns:
        [N] penalties, without the λ factor. Each sample's term depends on that sample
        alone when the critic has no batch statistics (the DP-SGD critic relies on it).
    """
    x_hat = epsilon * real + (1.0 - epsilon) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic_fn(x_hat)
    grads = tape.gradient(scores, x_hat)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + norm_epsilon)
    return tf.square(norms - 1.0)
