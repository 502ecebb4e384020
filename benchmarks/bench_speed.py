"""oneDNN on (tf_vesselgan's default) vs TensorFlow's default, side by side, one run.

    python benchmarks/bench_speed.py [--width 1.0] [--steps 3] [--wgan]

Each setting runs in its own process (the switch is read when TensorFlow is imported):
DCGAN s/step at batch 32, generator sampling samples/s and GFLOP/s at batch 256, and
with --wgan also WGAN-GP / WGAN-GP-SN s per 1,000 patches (n_critic 5, batch 32; about
6 minutes per step at paper width on a 2-core CPU). Medians of --steps after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def generator_gflop_per_sample(generator) -> float:
    """2·H_in·W_in·k²·C_in·C_out per transposed convolution (multiply + add)."""
    total = 0
    for layer in generator.layers:
        if type(layer).__name__ == "Conv2DTranspose":
            _, h, w, cin = layer.input.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * kh * kw * cin * layer.filters
    return total / 1e9


def worker(args) -> None:
    import tf_vesselgan  # noqa: F401
    import numpy as np
    import tensorflow as tf

    from tf_vesselgan.config import GANConfig
    from tf_vesselgan.training.gan_trainer import build_gan

    def median_time(fn, n):
        fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    out = {}
    archs = ["dcgan"] + (["wgan-gp", "wgan-gp-sn"] if args.wgan else [])
    for arch in archs:
        gan = build_gan(GANConfig(arch=arch, width=args.width), 96, seed=0)
        per_step = 32 * (1 if arch == "dcgan" else gan.n_critic)
        x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (per_step, 96, 96, 2)).astype(np.float32))
        step = tf.function(gan.train_step)
        s = median_time(lambda: float(step(x)["d_loss"]), args.steps if arch == "dcgan" else 1)
        out[arch] = {"s_per_step": s, "s_per_1000_patches": 1000 * s / per_step}
        if arch == "dcgan":
            gen = gan.generator
    z = tf.random.normal([256, 100], seed=1)
    infer = tf.function(lambda z: gen(z, training=False))
    s = median_time(lambda: infer(z).numpy(), args.steps)
    gflop = generator_gflop_per_sample(gen)
    out["sampling"] = {"samples_per_s": 256 / s, "gflop_per_sample": gflop, "gflop_per_s": 256 * gflop / s}
    print("RESULT " + json.dumps(out), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--wgan", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0
    results = {}
    for name, value in (("oneDNN on (default)", "1"), ("TF default (oneDNN off)", "0")):
        cmd = [sys.executable, __file__, "--worker", "--width", str(args.width), "--steps", str(args.steps)]
        cmd += ["--wgan"] if args.wgan else []
        res = subprocess.run(cmd, env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value), capture_output=True, text=True)
        line = [l for l in res.stdout.splitlines() if l.startswith("RESULT ")]
        if res.returncode or not line:
            print(res.stderr[-2000:], file=sys.stderr)
            return 1
        results[name] = json.loads(line[0][7:])
    on, off = results.values()
    print(f"width {args.width}, batch 32 (training) / 256 (sampling), {os.cpu_count()} CPUs, median of {args.steps}")
    print(f"{'measure':<36}{'oneDNN on':>12}{'TF default':>12}{'speed-up':>10}")
    rows = [("DCGAN s/step", on["dcgan"]["s_per_step"], off["dcgan"]["s_per_step"], True)]
    for arch in ("wgan-gp", "wgan-gp-sn"):
        if arch in on:
            rows.append((f"{arch.upper()} s/1000 patches", on[arch]["s_per_1000_patches"],
                         off[arch]["s_per_1000_patches"], True))
    rows.append(("sampling samples/s", on["sampling"]["samples_per_s"], off["sampling"]["samples_per_s"], False))
    rows.append(("sampling GFLOP/s", on["sampling"]["gflop_per_s"], off["sampling"]["gflop_per_s"], False))
    for label, a, b, lower_better in rows:
        print(f"{label:<36}{a:>12.2f}{b:>12.2f}{(b / a if lower_better else a / b):>9.2f}x")
    print(f"generator: {on['sampling']['gflop_per_sample']:.3f} GFLOP per sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
