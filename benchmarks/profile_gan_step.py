"""Where a GAN step's time goes at the paper's width, and how close to the CPU's FP32
peak each part runs.

    python benchmarks/profile_gan_step.py [--width 1.0] [--batch 32] [--archs dcgan,wgan-gp,wgan-gp-sn]
                                          [--peak 157] [--repeats 2]

Times, in graph mode with the same losses as `tf_vesselgan/training/gan.py`, the parts of
each step: generator forward, critic forward, the critic update (forward + backward; for
WGAN-GP with the gradient penalty's double backward), the generator update, and the full
train step. FLOPs are counted from the layer shapes (2·k²·C_in·C_out per output pixel of a
convolution, per input pixel of a transposed one; a backward pass counted as 2 forwards,
an input-only backward as 1, the penalty's second-order pass as 4), so GFLOP/s ≈ how well
the arithmetic units are used. --peak is the machine's FP32 peak (2 cores × 2.45 GHz ×
32 FLOP/cycle here).
"""
from __future__ import annotations

import argparse
import time

import tf_vesselgan  # noqa: F401  (oneDNN on)


def conv_gflop_per_sample(model) -> float:
    total = 0
    for layer in model.layers:
        conv = layer.layer if type(layer).__name__ == "SpectralNormalization" else layer
        kind = type(conv).__name__
        if kind not in ("Conv2D", "Conv2DTranspose"):
            continue
        k = conv.kernel_size[0] * conv.kernel_size[1]
        cin = layer.input.shape[-1]
        # per output pixel of a convolution, per input pixel of a transposed one
        _, h, w, _ = (layer.input if kind == "Conv2DTranspose" else layer.output).shape
        total += 2 * h * w * k * cin * conv.filters
    return total / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--archs", default="dcgan,wgan-gp,wgan-gp-sn")
    ap.add_argument("--peak", type=float, default=157.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import numpy as np
    import tensorflow as tf

    from tf_vesselgan.config import GANConfig
    from tf_vesselgan.losses.adversarial import dcgan_discriminator_loss, wasserstein_critic_loss
    from tf_vesselgan.losses.gradient_penalty import gradient_penalty
    from tf_vesselgan.training.gan_trainer import build_gan

    b = args.batch

    def timed(fn):
        fn()  # trace + warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    print(f"width {args.width}, batch {b}, FP32 peak {args.peak:g} GFLOP/s; median of {args.repeats}")
    for arch in args.archs.split(","):
        gan = build_gan(GANConfig(arch=arch, width=args.width, n_critic=1), 96, seed=0)
        G, D = gan.generator, gan.critic
        fg = conv_gflop_per_sample(G)
        fd = conv_gflop_per_sample(D)
        z = tf.random.normal([b, 100], seed=1)
        real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (b, 96, 96, 2)).astype(np.float32))
        eps = tf.random.uniform([b, 1, 1, 1], seed=2)
        scores = lambda x: D(x, training=True)[0]  # noqa: E731

        @tf.function
        def g_forward():
            return G(z, training=True)

        @tf.function
        def d_forward():
            return scores(real)

        @tf.function
        def d_update():
            fake = G(z, training=True)
            with tf.GradientTape() as tape:
                if arch == "dcgan":
                    loss = dcgan_discriminator_loss(scores(real), scores(fake), tf.ones([b, 1]), tf.zeros([b, 1]))
                else:
                    s = scores(tf.concat([real, fake], 0))
                    loss = wasserstein_critic_loss(s[:b], s[b:]) + 10.0 * gradient_penalty(scores, real, fake, eps)
            return tape.gradient(loss, D.trainable_variables)

        @tf.function
        def g_update():
            with tf.GradientTape() as tape:
                fake = G(z, training=True)
                if arch == "dcgan":  # feature matching: the critic also sees the real batch
                    _, ff = D(fake, training=True)
                    _, rf = D(real, training=True)
                    loss = tf.reduce_mean(tf.abs(tf.reduce_mean(tf.stop_gradient(rf), 0) - tf.reduce_mean(ff, 0)))
                else:
                    loss = -tf.reduce_mean(scores(fake))
            return tape.gradient(loss, G.trainable_variables)

        step = tf.function(gan.train_step)
        data = tf.concat([real] * 1, 0)
        parts = [
            ("generator forward", g_forward, b * fg),
            ("critic forward", d_forward, b * fd),
            ("critic update" + (" (incl. gradient penalty)" if arch != "dcgan" else ""), d_update,
             b * fg + (3 * 2 * b * fd if arch == "dcgan" else 3 * 2 * b * fd + 6 * b * fd)),
            ("generator update", g_update,
             3 * b * fg + (b * fd * 2 + b * fd if arch == "dcgan" else 2 * b * fd)),
            ("full train step (1 critic + 1 generator update)", lambda: float(step(data)["d_loss"]), None),
        ]
        print(f"\n{arch}: generator {fg:.3f} GFLOP/sample, critic {fd:.3f} GFLOP/sample (forward)")
        print(f"  {'part':<50}{'s':>8}{'GFLOP':>9}{'GFLOP/s':>9}{'of peak':>9}")
        res = {}
        for name, fn, flop in parts:
            s = timed(fn)
            res[name] = s
            if flop is None:
                flop = parts[2][2] + parts[3][2]
            print(f"  {name:<50}{s:>8.2f}{flop:>9.0f}{flop / s:>9.1f}{flop / s / args.peak:>9.0%}")
        if arch != "dcgan":
            per_1000 = (5 * res[parts[2][0]] + res[parts[3][0]]) / (5 * b) * 1000
            print(f"  implied with n_critic 5: {per_1000:.0f} s per 1,000 patches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
