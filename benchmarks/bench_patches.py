"""Data-stage benchmark on real volumes: extraction patches/s, tf.data batches/s, wall, peak RSS.

    python benchmarks/bench_patches.py [--data ../shared/data/icbm-mra] [--batch 32]

Runs `vesselgan patches` with the default config (500 + 500 patches per case) in a
child process so its wall time and peak RSS are its own, then streams the training
split once with the GAN pipeline.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "icbm-mra"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    if not Path(args.data).is_dir():
        print(f"no data at {args.data}; pass --data", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "patches"
        t0 = time.perf_counter()
        env = dict(os.environ, VESSELGAN_NO_PROGRESS="1")
        subprocess.run([sys.executable, "-m", "tf_vesselgan", "patches", "--data", args.data, "--out", str(out),
                        "--seed", "1"], check=True, env=env)
        wall = time.perf_counter() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        m = json.loads((out / "manifest.json").read_text())
        total = sum(m["counts"].values())
        size = sum(f.stat().st_size for f in out.iterdir()) / 2**20

        import tf_vesselgan  # noqa: F401
        from tf_vesselgan.data.pipeline import make_dataset

        ds = make_dataset(out, "train", batch_size=args.batch, mode="gan", seed=0)
        for _ in ds.take(2):
            pass  # warm-up
        t1 = time.perf_counter()
        n = sum(1 for _ in ds)
        stream = time.perf_counter() - t1
    print(f"data: {args.data} ({len(m['cases'])} cases)")
    print(f"patches: {total} patches in {wall:.1f} s wall (incl. interpreter + TF import) "
          f"= {total / wall:.0f} patches/s; peak RSS {rss_mb:.0f} MB; shards {size:.0f} MB")
    print(f"tf.data: {n} batches of {args.batch} in {stream:.2f} s = {n / stream:.1f} batches/s "
          f"({n * args.batch / stream:.0f} patches/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
