"""Integration on the shared real ICBM volumes; skipped when ../shared is not there."""
import json

import pytest

from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "images").is_dir(), reason="no ../shared/data/icbm-mra")


def test_icbm_default_patches(tmp_path, cli):
    out = tmp_path / "q"
    code, stdout, err = cli("patches", "--data", SHARED_DATA, "--out", out, "--seed", 1)
    assert code == 0, err
    m = json.loads((out / "manifest.json").read_text())
    ids = sorted(c for s in m["splits"].values() for c in s)
    assert ids == sorted(p.name.split(".")[0] for p in (SHARED_DATA / "images").iterdir())
    assert len(ids) == len(set(ids)) == 7
    assert sum(m["counts"].values()) == 7 * 1000
    assert all(m["counts"][s] == 1000 * len(c) for s, c in m["splits"].items())
    assert m["cases"]["MNI_0590"]["mask"] == "auto"
