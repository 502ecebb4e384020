"""A full disk: every writing command ends with one line ("no space left on device"),
exit 2, and no temporary file left on the full file system. Needs a 1 MB tmpfs (root
with mount rights); skipped cleanly elsewhere."""
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import make_case

MODEL = Path(__file__).resolve().parents[1] / "saved_models" / "vessel_pairs_icbm"
SHIPPED = MODEL / str(json.loads((MODEL / "provenance.json").read_text())["version"])  # the shipped version


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory):
    mnt = Path("/tmp") / f"vesselgan-tmpfs-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)
    mnt.rmdir()


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".partial" in p.name or p.name.endswith("_temp") or "_temp" in p.name]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tf_vesselgan.config import load_config
    from tf_vesselgan.data.build import build_patches

    root = tmp_path_factory.mktemp("disk")
    for i in range(4):
        make_case(root / "data", f"c{i}", shape=(100, 100, 6), seed=i, n_vessels=60)
    (root / "p.yaml").write_text("data:\n  patch_size: 96\n  n_vessel: 60\n  n_random: 60\n"
                                 "  split: {train: 0.5, val: 0.25, test: 0.25}\n")
    build_patches(root / "data", root / "patches", load_config(root / "p.yaml"), progress=False)
    return root


@pytest.mark.parametrize("case", ["sample-npz", "sample-nifti", "sample-png", "patches", "train-gan"])
def test_full_disk_is_one_line_and_leaves_nothing(full_disk, data, cli, case):
    out = full_disk / case
    if case.startswith("sample"):
        fmt = case.split("-")[1]
        args = ("sample", "--model", SHIPPED, "--n", 3000, "--format", fmt, "--out", out)
    elif case == "patches":
        args = ("patches", "--data", data / "data", "--out", out, "--config", data / "p.yaml")
    else:
        args = ("train-gan", "--arch", "dcgan", "--patches", data / "patches", "--out", out, "--width", 0.125,
                "--batch-size", 4, "--epochs", 1, "--steps-per-epoch", 1)
    code, _, err = cli(*args)
    lines = [ln for ln in err.strip().splitlines() if "UserWarning" not in ln and "data_adapter" not in ln]
    assert code == 2 and "no space left on device" in err and len(lines) == 1, err[-2000:]
    assert leftovers(full_disk) == []
    subprocess.run(["rm", "-rf", str(out)], check=False)
