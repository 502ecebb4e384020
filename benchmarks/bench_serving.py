"""Sampling throughput: in-process SavedModel vs the built-in server over REST and gRPC.

    python benchmarks/bench_serving.py [--width 0.0625] [--batches 1 64 512] [--seconds 3]

Exports a generator (random weights: speed does not depend on training) at --width,
starts `vesselgan serve` in its own process, and prints, from one run, samples/s at each
batch size for the three paths (clients decode the outputs to NumPy), their ratio to
in-process, and p50/p99 latency with 8 concurrent clients at batch 64.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def rate(fn, batch: int, seconds: float) -> float:
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += batch
    return n / (time.perf_counter() - t0)


def latencies(fn, clients: int = 8, per_client: int = 6) -> tuple[float, float]:
    def one(_):
        out = []
        for _ in range(per_client):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    with ThreadPoolExecutor(clients) as pool:
        lat = np.concatenate(list(pool.map(one, range(clients))))
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=0.0625)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 512])
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    import tensorflow as tf

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import free_ports
    from tests.serving.conftest import fake_gan_run
    from tf_vesselgan.serving.client import GrpcClient, RestClient
    from tf_vesselgan.serving.export import export_model, write_models_config

    tmp = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    fake_gan_run(tmp / "run", width=args.width)
    export_model(tmp / "run", tmp / "models" / "generator")
    write_models_config(tmp / "models.config", {"generator": str(tmp / "models" / "generator")})
    rest_port, grpc_port = free_ports(2)
    proc = subprocess.Popen([sys.executable, "-m", "tf_vesselgan", "serve", "--model-config", str(tmp / "models.config"),
                             "--rest-port", str(rest_port), "--grpc-port", str(grpc_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, VESSELGAN_NO_PROGRESS="1"))
    try:
        assert "serving" in proc.stdout.readline()
        model = tf.saved_model.load(str(tmp / "models" / "generator" / "1")).signatures["serving_default"]
        rest = RestClient(f"http://127.0.0.1:{rest_port}", "generator")
        grpc = GrpcClient(f"127.0.0.1:{grpc_port}", "generator")
        print(f"generator width {args.width}; cores {os.cpu_count()}; server in its own process")
        print(f"{'batch':>6} {'in-process/s':>13} {'REST/s':>9} {'gRPC/s':>9} {'REST ratio':>11} {'gRPC ratio':>11}")
        for b in args.batches:
            z = np.random.default_rng(0).normal(size=(b, 100)).astype(np.float32)

            def local():
                out = model(noise=tf.constant(z))
                return out["image"].numpy(), out["label"].numpy()

            r_in = rate(local, b, args.seconds)
            r_rest = rate(lambda: rest.predict(z), b, args.seconds)
            r_grpc = rate(lambda: grpc.predict(z), b, args.seconds)
            print(f"{b:>6} {r_in:>13.1f} {r_rest:>9.1f} {r_grpc:>9.1f} {r_rest / r_in:>10.0%} {r_grpc / r_in:>10.0%}")
        z = np.random.default_rng(1).normal(size=(64, 100)).astype(np.float32)
        for name, client in (("REST", rest), ("gRPC", grpc)):
            p50, p99 = latencies(lambda: client.predict(z))
            print(f"8 concurrent {name} clients, batch 64: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
