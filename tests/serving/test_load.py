"""Load test: 1,000 malformed requests mixed with valid ones against `vesselgan serve`
in its own process: no crash, RSS bounded, every valid request answered."""
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def post(port, path, data: bytes):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


MALFORMED = [
    ("/v1/models/generator:predict", b"{"),
    ("/v1/models/generator:predict", b"[1,2,3]"),
    ("/v1/models/generator:predict", b'{"instances": "x"}'),
    ("/v1/models/generator:predict", b'{"instances": [[NaN]]}'),
    ("/v1/models/generator:predict", json.dumps({"instances": [[1e39] * 100]}).encode()),
    ("/v1/models/generator:predict", json.dumps({"signature_name": "sample", "inputs": {"count": -5, "seed": 0}}).encode()),
    ("/v1/models/generator:predict", json.dumps({"signature_name": "sample", "inputs": {"count": 10**9, "seed": 0}}).encode()),
    ("/v1/models/generator:predict", json.dumps({"signature_name": "sample", "inputs": {"count": 2.5, "seed": 0}}).encode()),
    ("/v1/models/generator:predict", json.dumps({"inputs": {"noise": [[0.0] * 99]}}).encode()),
    ("/v1/models/generator:predict", b"\xff\xfe\x00garbage"),
    ("/v1/models/nobody:predict", b'{"instances": [[0]]}'),
    ("/v1/models/generator/versions/x:predict", b"{}"),
    ("/v1/models/generator:predict", b" " * 300_000),  # over the 200 kB body limit
    ("/v1/models/generator/versions/" + "9" * 5000 + ":predict", b"{}"),  # beyond int64
    ("/v1/models/generator:predict", json.dumps({"instances": [[True] * 100]}).encode()),  # bool noise
]


@pytest.mark.slow  # a load test: about 30 s of requests
def test_thousand_malformed_requests_mixed_with_valid_ones(exported, tmp_path):
    from tests.conftest import free_ports

    rest, grpc_port = free_ports(2)
    env = dict(os.environ, VESSELGAN_NO_PROGRESS="1")
    proc = subprocess.Popen([sys.executable, "-m", "tf_vesselgan", "serve", "--model-config",
                             str(exported["root"] / "models.config"), "--rest-port", str(rest), "--grpc-port",
                             str(grpc_port), "--max-body", "200000"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "serving" in proc.stdout.readline()
        valid = json.dumps({"signature_name": "sample", "inputs": {"count": 2, "seed": 1}}).encode()
        for _ in range(20):  # warm up before measuring RSS
            assert post(rest, "/v1/models/generator:predict", valid)[0] == 200
        rss0 = rss_mb(proc.pid)
        rng = random.Random(0)
        jobs = [("bad", *MALFORMED[i % len(MALFORMED)]) for i in range(1000)]
        jobs += [("good", "/v1/models/generator:predict", valid)] * 250
        rng.shuffle(jobs)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda j: (j[0], *post(rest, j[1], j[2])), jobs))
        seconds = time.perf_counter() - t0
        good = [r for r in results if r[0] == "good"]
        bad = [r for r in results if r[0] == "bad"]
        assert all(code == 200 and len(orjson.loads(body)["outputs"]["image"]) == 2 for _, code, body in good)
        assert all(400 <= code < 500 and "error" in orjson.loads(body) for _, code, body in bad)
        assert proc.poll() is None
        growth = rss_mb(proc.pid) - rss0
        print(f"load test: {len(jobs)} requests in {seconds:.1f} s, RSS growth {growth:.0f} MB")
        assert growth < 150
    finally:
        proc.terminate()
        proc.wait(timeout=30)
