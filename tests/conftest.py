"""Shared fixtures: seeds, tiny NIfTI cases, in-process CLI runs, 2 logical CPUs."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("VESSELGAN_NO_PROGRESS", "1")
import tf_vesselgan  # noqa: E402,F401  (sets TF environment defaults before TF loads)

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "icbm-mra"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long test, run with `make test-slow`")
    import tensorflow as tf

    # Two logical CPUs so MirroredStrategy tests have two replicas on one machine.
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    except RuntimeError:
        pass  # already initialised


@pytest.fixture(autouse=True)
def fixed_seeds():
    import keras

    keras.utils.set_random_seed(1234)
    yield


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """benchmarks/NAME.py as a module, its sibling helpers importable as when run as a script."""
    import importlib.util
    import sys

    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_nifti(path: Path, data, affine=None, dtype=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data if dtype is None else np.asarray(data).astype(dtype))
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def make_volume(shape=(24, 24, 6), seed=0, n_vessels=40):
    """A small image with a bright random label set."""
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.uint8)
    idx = rng.choice(label.size, size=n_vessels, replace=False)
    label.flat[idx] = 1
    image = rng.normal(100, 10, shape).astype(np.float32) + 200 * label
    return image, label


def make_case(root: Path, cid: str, shape=(24, 24, 6), seed=0, n_vessels=40, affine=None):
    image, label = make_volume(shape, seed, n_vessels)
    write_nifti(root / "images" / f"{cid}.nii.gz", image, affine)
    write_nifti(root / "labels" / f"{cid}.nii.gz", label, affine)
    return image, label


def tiny_gan_data(root: Path, config_name: str, config_text: str) -> Path:
    """4 cases of 100x100x4 under root/data, the config as root/<config_name>, and their
    patches under root/patches (built with that config); returns root."""
    from tf_vesselgan.config import load_config
    from tf_vesselgan.data.build import build_patches

    for i in range(4):
        make_case(root / "data", f"c{i}", shape=(100, 100, 4), seed=i, n_vessels=60)
    (root / config_name).write_text(config_text)
    build_patches(root / "data", root / "patches", load_config(root / config_name), progress=False)
    return root


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text("data:\n  patch_size: 16\n  n_vessel: 5\n  n_random: 5\n  shard_size: 7\n")
    return p


@pytest.fixture
def cli(capsys):
    """Runs `vesselgan ARGS` in-process; returns (exit code, stdout, stderr)."""
    from tf_vesselgan.cli.main import main

    def run(*args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound together so they differ)."""
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
