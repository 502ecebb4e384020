"""The pretrained generator shipped in saved_models/: loads on a fresh clone, samples fast,
gives diverse pairs with binary labels at the vessel fraction it was calibrated to."""
import json
import time
from pathlib import Path

import numpy as np
import pytest

SHIPPED = Path(__file__).resolve().parents[2] / "saved_models" / "vessel_pairs_icbm"


def test_shipped_generator_samples_diverse_binary_pairs_fast():
    from tf_vesselgan.training.sampling import generate_from_export, pairs_from_export

    provenance = json.loads((SHIPPED / "provenance.json").read_text())
    version = SHIPPED / str(provenance["version"])  # the version the provenance describes
    assert (version / "saved_model.pb").exists(), "the shipped generator is missing"
    assert [p.name for p in SHIPPED.iterdir() if p.is_dir()] == [version.name]  # one version shipped
    size_mb = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file()) / 1e6
    assert size_mb <= 5.0
    t0 = time.perf_counter()
    batches, size, info = generate_from_export(version, 1000, seed=0)
    image = np.concatenate([b[0] for b in batches])
    t1 = time.perf_counter()
    batches, _, _ = generate_from_export(version, 1000, seed=0)
    label = np.concatenate([b[1] for b in batches])
    assert t1 - t0 < 30.0
    assert image.shape == label.shape == (1000, size, size) == (1000, 96, 96)
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert set(np.unique(label)) <= {0, 1}
    # diverse: per-pixel std across samples well above a collapsed generator's (real ICBM patches: ~0.4)
    assert image.std(axis=0).mean() > 0.15
    assert len({hash(x.tobytes()) for x in image}) == 1000
    assert info["threshold"] == pytest.approx(provenance["label_threshold"], abs=1e-6)
    assert label.mean() == pytest.approx(provenance["real_label_fraction"], rel=0.5)
    in_memory = pairs_from_export(version, 1000, seed=0)  # what the experiment scripts draw
    assert in_memory[0].dtype == np.float32 and in_memory[1].dtype == np.uint8
    np.testing.assert_array_equal(in_memory[0], image)
    np.testing.assert_array_equal(in_memory[1], label)
