"""Exact nearest neighbours for the privacy audit at the paper's scale.

    python benchmarks/bench_neighbours.py [--queries 2048] [--reference 41000]

Times `tf_vesselgan.privacy.neighbours.nearest` for Q queries against N reference
pairs of 96×96×2 (18,432 values each), prints GFLOP/s and the time this implies for
the paper's 41,000 × 41,000 (the search is chunked over queries, so time is linear
in their number), and checks a planted copy is found at distance 0.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=2048)
    ap.add_argument("--reference", type=int, default=41000)
    ap.add_argument("--dim", type=int, default=96 * 96 * 2)
    args = ap.parse_args()
    from tf_vesselgan.privacy.neighbours import nearest

    rng = np.random.default_rng(0)
    ref = rng.random((args.reference, args.dim), dtype=np.float32) * 2 - 1
    q = rng.random((args.queries, args.dim), dtype=np.float32) * 2 - 1
    q[0] = ref[12345 % args.reference]
    nearest(q[:64], ref[:1024])  # warm up BLAS threads
    t0 = time.perf_counter()
    idx, d = nearest(q, ref)
    sec = time.perf_counter() - t0
    flop = 2.0 * args.queries * args.reference * args.dim
    full = sec * 41000 / args.queries * args.reference / 41000
    print(f"nearest: {args.queries} queries x {args.reference} reference x {args.dim} dims in {sec:.1f} s "
          f"({flop / sec / 1e9:.1f} GFLOP/s); planted copy found: {idx[0] == 12345 % args.reference and d[0] == 0}")
    print(f"implied 41,000 x {args.reference}: {full / 60:.1f} min (exact search, linear in queries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
