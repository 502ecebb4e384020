"""Seconds per GAN training step and patches/s, per architecture and width (batch 32).

    python benchmarks/bench_gan_step.py [--widths 0.0625,1.0] [--batch 32] [--steps 3]
        [--archs dcgan,wgan-gp,wgan-gp-sn] [--upsample transposed,resize] [--label-head shared,image]
        [--critic-layout mirror|official] [--label-teacher 0,0.25]

Same graph-mode `train_step` as `vesselgan train-gan`, on random in-range pairs (no
input pipeline), after one warm-up step that includes tracing; reports the median.
A WGAN step consumes n_critic × batch patches (n_critic 5), a DCGAN step batch patches.
`--label-teacher W` adds gan.label_teacher's loss with a (untrained, equally costly) U-net
of width W as the teacher; 0 = without.
"""
from __future__ import annotations

import argparse
import os
import time

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="0.0625")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--archs", default="dcgan,wgan-gp,wgan-gp-sn")
    ap.add_argument("--upsample", default="transposed", help="generator upsampling(s), comma-separated")
    ap.add_argument("--label-head", default="shared", help="generator label head(s), comma-separated")
    ap.add_argument("--critic-layout", default="mirror", choices=["mirror", "official"])
    ap.add_argument("--label-teacher", default="0", help="label teacher width(s), comma-separated; 0 = none")
    args = ap.parse_args()
    import numpy as np
    import tensorflow as tf

    from tf_vesselgan.config import GANConfig
    from tf_vesselgan.models.unet import build_unet
    from tf_vesselgan.training.gan_trainer import build_gan

    print(f"TF {tf.__version__}, oneDNN={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, "
          f"threads intra={tf.config.threading.get_intra_op_parallelism_threads()}, cpus={os.cpu_count()}")
    print(f"{'arch':<12}{'upsample':<12}{'label head':<12}{'teacher':>8}{'width':>7}{'G params':>12}{'D params':>12}{'s/step':>9}"
          f"{'patches/s':>11}"
          f"{'s/1000 patches':>16}")
    for width in [float(w) for w in args.widths.split(",")]:
        for arch, upsample, head, teacher in [(a, u, h, float(t)) for a in args.archs.split(",")
                                              for u in args.upsample.split(",") for h in args.label_head.split(",")
                                              for t in args.label_teacher.split(",")]:
            gan = build_gan(GANConfig(arch=arch, width=width, upsample=upsample, label_head=head,
                                      critic_layout=args.critic_layout, label_teacher_steps=int(teacher > 0),
                                      label_teacher_width=teacher or 0.25), 96, seed=0)
            if teacher:
                gan.set_label_teacher(build_unet(teacher, 0.0))
            per_step = args.batch * (1 if arch == "dcgan" else gan.n_critic)
            x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (per_step, 96, 96, 2)).astype(np.float32))
            step = tf.function(gan.train_step)
            step(x)  # trace + first run
            times = []
            for _ in range(args.steps):
                t = time.perf_counter()
                out = step(x)
                float(out["d_loss"])  # wait for the result
                times.append(time.perf_counter() - t)
            s = float(np.median(times))
            print(f"{arch:<12}{upsample:<12}{head:<12}{teacher:>8g}{width:>7g}{gan.generator.count_params():>12,d}"
                  f"{gan.critic.count_params():>12,d}"
                  f"{s:>9.2f}{per_step / s:>11.1f}{1000 * s / per_step:>16.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
