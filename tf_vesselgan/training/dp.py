"""Differentially private critic updates (DP-SGD, Abadi et al. 2016) and their accounting.

Only the critic touches real patches, so only its gradient is privatised; the generator's
update is post-processing. Per step, for a batch drawn by Poisson sampling (each real
patch included independently with probability q):

1. per-example gradients g_i of the per-example critic loss (for WGAN-GP each example's
   loss includes its own gradient-penalty term), computed vectorised (a Jacobian of the
   per-example loss vector with `pfor`), not in a Python loop;
2. each clipped to L2 norm C over all variables: g_i · min(1, C / ‖g_i‖);
3. summed, Gaussian noise N(0, σ²C²) added per coordinate, divided by the expected batch
   size q·N (not the drawn one, which would leak it).

The accountant is dp-accounting's RDP accountant for the Poisson-subsampled Gaussian
mechanism composed over the steps — the mechanism the steps above implement.
"""
from __future__ import annotations

import tensorflow as tf


def per_example_gradients(per_example_losses, variables) -> list[tf.Tensor]:
    """d loss_i / d variables for every example i: `per_example_losses` is a callable that
    returns the loss vector [B] (examples must not interact: no batch statistics).

    Returns one tensor [B, *variable.shape] per variable."""
    with tf.GradientTape() as tape:
        losses = per_example_losses()
    return tape.jacobian(losses, variables, experimental_use_pfor=True,
                         unconnected_gradients=tf.UnconnectedGradients.ZERO)


def wgan_critic_losses(critic_fn, real, fake, epsilon, gp_weight: float):
    """The WGAN-GP critic loss per example i: D(fake_i) − D(real_i) + λ·GP_i (its mean is
    the batch loss `WGANGP.train_step` minimises)."""
    from tf_vesselgan.losses.gradient_penalty import gradient_penalty_per_example

    scores = critic_fn(tf.concat([real, fake], axis=0))[:, 0]
    n = tf.shape(real)[0]
    return scores[n:] - scores[:n] + gp_weight * gradient_penalty_per_example(critic_fn, real, fake, epsilon)


def clip_sum_noise(grads: list[tf.Tensor], l2_clip: float, noise_multiplier: float, expected_batch: float,
                   seed) -> tuple[list[tf.Tensor], tf.Tensor]:
    """The privatised gradient from per-example gradients [B, ...]: each example clipped to
    L2 norm `l2_clip` (over all variables together), summed, N(0, (σ·C)²) noise added,
    divided by `expected_batch`. `seed` is a stateless seed [2]; returns (gradients, the
    per-example norms before clipping)."""
    batch = tf.shape(grads[0])[0]
    squares = tf.add_n([tf.reduce_sum(tf.reshape(tf.square(g), [batch, -1]), axis=1) for g in grads])
    norms = tf.sqrt(squares)
    scale = tf.minimum(1.0, l2_clip / tf.maximum(norms, 1e-12))
    out = []
    for k, g in enumerate(grads):
        summed = tf.tensordot(scale, g, axes=[[0], [0]])
        if noise_multiplier > 0:
            seed_k = tf.stack([tf.cast(seed[0], tf.int64), tf.cast(seed[1], tf.int64) * 1000 + k])
            summed += tf.random.stateless_normal(tf.shape(summed), seed_k) * (noise_multiplier * l2_clip)
        out.append(summed / expected_batch)
    return out, norms


def poisson_gaussian_event(sampling_probability: float, noise_multiplier: float, steps: int):
    import dp_accounting

    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sampling_probability, dp_accounting.GaussianDpEvent(noise_multiplier)),
        int(steps))


def epsilon_spent(sampling_probability: float, noise_multiplier: float, steps: int, delta: float) -> float:
    """ε of (ε, δ)-DP after `steps` Poisson-sampled Gaussian steps (dp-accounting's RDP
    accountant); 0 before the first step."""
    from dp_accounting.rdp import RdpAccountant

    if steps <= 0:
        return 0.0
    accountant = RdpAccountant()
    accountant.compose(poisson_gaussian_event(sampling_probability, noise_multiplier, steps))
    return float(accountant.get_epsilon(delta))


def steps_within(target_epsilon: float, sampling_probability: float, noise_multiplier: float, delta: float,
                 limit: int = 10_000_000) -> int:
    """The largest number of steps whose ε stays within `target_epsilon` (bisection; ε
    grows with the steps)."""
    lo, hi = 0, 1
    while hi < limit and epsilon_spent(sampling_probability, noise_multiplier, hi, delta) <= target_epsilon:
        lo, hi = hi, hi * 2
    hi = min(hi, limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if epsilon_spent(sampling_probability, noise_multiplier, mid, delta) <= target_epsilon:
            lo = mid
        else:
            hi = mid
    return lo
