"""oneDNN on (our default) and off (TF's default on this CPU) give the same training
step and the same samples within float tolerance."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def run(setting: str, out: Path) -> dict:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    res = subprocess.run([sys.executable, str(Path(__file__).with_name("onednn_worker.py")), str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    # TensorFlow announces oneDNN at import when it is on: proof the setting took effect
    assert ("oneDNN custom operations are on" in res.stderr) == (setting == "1")
    with np.load(out) as z:
        return dict(z)


@pytest.mark.slow  # two fresh TensorFlow processes, about 40 s: a check of the environment, not of a change
def test_training_and_sampling_agree_with_onednn_on_and_off(tmp_path):
    on, off = run("1", tmp_path / "on.npz"), run("0", tmp_path / "off.npz")
    for arch, lr in (("dcgan", 3e-4), ("wgan-gp", 1e-4), ("wgan-gp-sn", 1e-4)):
        np.testing.assert_array_equal(on[f"{arch}/init"], off[f"{arch}/init"])
        # one Adam step moves a weight by ≤ lr whatever its gradient; a near-zero gradient
        # may change sign with the summation order, so half a step bounds the difference
        for part in ("generator", "critic"):
            a, b = on[f"{arch}/{part}"], off[f"{arch}/{part}"]
            np.testing.assert_allclose(a, b, rtol=0, atol=lr)
            assert np.mean(np.abs(a - b) < 1e-6) > 0.9, (arch, part)
        assert not np.allclose(on[f"{arch}/generator"], on[f"{arch}/init"])  # the step did train
        np.testing.assert_allclose(on[f"{arch}/image"], off[f"{arch}/image"], atol=1e-3)
        assert np.mean(on[f"{arch}/label"] != off[f"{arch}/label"]) < 1e-3
