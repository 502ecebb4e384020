"""DP-SGD critic update vs the ordinary one, side by side in one run.

    python benchmarks/bench_dp_step.py [--width 0.125] [--batch 32] [--steps 5] [--arch wgan-gp] [--jacobian]

One WGAN-GP critic update (loss with gradient penalty, gradient, Adam step) on 96x96
pairs, in graph mode: ordinary (mean loss) vs DP-SGD as `DPWGANGP` does it (per-example
gradients mapped over the batch with tf.vectorized_map, clipping, Gaussian noise;
tf_vesselgan/training/dp.py) and, for reference, the per-example gradients as a Jacobian
of the loss vector (the first implementation). Median seconds after a warm-up.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--arch", default="wgan-gp", choices=["wgan-gp", "wgan-gp-sn"])
    ap.add_argument("--jacobian", action="store_true", help="also time the Jacobian formulation (slow)")
    args = ap.parse_args()

    import tf_vesselgan  # noqa: F401  (oneDNN on)
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_vesselgan.models.critic import build_critic
    from tf_vesselgan.training.dp import clip_sum_noise, per_example_gradients, wgan_critic_losses

    critic = build_critic(args.arch, args.width, 96)
    opt = keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)
    opt.build(critic.trainable_variables)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (args.batch, 96, 96, 2)).astype(np.float32))
    fake = tf.constant(rng.uniform(-1, 1, (args.batch, 96, 96, 2)).astype(np.float32))
    eps = tf.constant(rng.uniform(0, 1, (args.batch, 1, 1, 1)).astype(np.float32))
    score = lambda x: critic(x, training=True)[0]  # noqa: E731
    variables = critic.trainable_variables

    @tf.function
    def ordinary():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(wgan_critic_losses(score, real, fake, eps, 10.0))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    frozen = lambda x: critic(x, training=False)[0]  # noqa: E731  (the DP step's spectral norm runs once)

    @tf.function
    def private():
        critic(real[:1], training=True)
        _, per = per_example_gradients(lambda r, f, e: wgan_critic_losses(frozen, r, f, e, 10.0), variables,
                                       (real, fake, eps))
        grads, _ = clip_sum_noise(per, 1.0, 1.1, float(args.batch), tf.constant([0, 1], tf.int64))
        opt.apply_gradients(zip(grads, variables))
        return tf.reduce_mean(grads[0])

    @tf.function
    def jacobian():
        with tf.GradientTape() as tape:
            losses = wgan_critic_losses(score, real, fake, eps, 10.0)
        per = tape.jacobian(losses, variables, experimental_use_pfor=True,
                            unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads, _ = clip_sum_noise(per, 1.0, 1.1, float(args.batch), tf.constant([0, 1], tf.int64))
        opt.apply_gradients(zip(grads, variables))
        return tf.reduce_mean(grads[0])

    def median(fn):
        fn()
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # pfor's while-loop notes
    a, b = median(ordinary), median(private)
    c = median(jacobian) if args.jacobian else None
    params = sum(int(np.prod(v.shape)) for v in variables)
    print(f"{args.arch} critic, width {args.width}, batch {args.batch}, {params:,} parameters")
    print(f"ordinary critic update             {a:.3f} s")
    print(f"DP-SGD critic update (vectorized)  {b:.3f} s   ({b / a:.2f}x)")
    if c is not None:
        print(f"DP-SGD critic update (Jacobian)    {c:.3f} s   ({c / a:.2f}x)")


if __name__ == "__main__":
    main()
