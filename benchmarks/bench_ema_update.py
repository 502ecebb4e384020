"""Machine-milliseconds per weight-average update of the generator: op by op in eager mode
(how `GeneratorEMA` did it) against its one compiled call.

    python benchmarks/bench_ema_update.py [--width 0.125] [--latent 100] [--updates 300] [--rounds 3]

Both update the same averaged copy of a generator of the given width (no training, no
data), alternating per round so that a drifting host hits them alike; reports the median
per round, and the ratio of the two measured in this run. An ICBM DCGAN step at width 1/8
costs about 107 machine-milliseconds on the 2-core machine these numbers come from.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def machine_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) / (os.cpu_count() or 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import tensorflow as tf

    from tf_vesselgan.models.generator import build_generator
    from tf_vesselgan.training.ema import GeneratorEMA, ema_decay_at

    gen = build_generator(args.latent, args.width, 96)
    avg = build_generator(args.latent, args.width, 96, name="ema_generator")
    step = tf.Variable(0, dtype=tf.int64)
    compiled = GeneratorEMA(gen, avg, 0.995, lambda: step)
    pairs = compiled.pairs

    def eager():
        d = ema_decay_at(0.995, int(step.numpy()))
        for a, w in pairs:
            a.assign(d * a + (1.0 - d) * w)

    arms = {"eager": eager, "compiled": lambda: compiled.on_train_batch_end(0)}
    for fn in arms.values():
        fn()  # tracing
    per_update: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(args.rounds):
        for name, fn in arms.items():
            t0 = machine_seconds()
            for _ in range(args.updates):
                step.assign_add(1)
                fn()
            per_update[name].append(1000 * (machine_seconds() - t0) / args.updates)
    print(f"generator width {args.width:g}: {len(pairs)} averaged variables, "
          f"{sum(int(tf.size(w)) for _, w in pairs):,d} weights")
    print(f"{'update':>10}{'machine-ms':>12}{'ratio':>8}")
    base = statistics.median(per_update["eager"])
    for name, v in per_update.items():
        print(f"{name:>10}{statistics.median(v):>12.2f}{statistics.median(v) / base:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
