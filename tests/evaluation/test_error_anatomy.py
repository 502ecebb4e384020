"""benchmarks/error_anatomy.py: false positives at a vessel's border, far from it, and in
structures of the prediction's own."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from tests.conftest import load_benchmark


def _anatomy():
    return load_benchmark("error_anatomy").anatomy


def test_a_thick_vessel_and_a_blob_of_its_own():
    truth = np.zeros((40, 40, 40), bool)
    truth[10:30, 19:21, 19:21] = True  # a tube
    thick = ndi.binary_dilation(truth, np.ones((3, 3, 3), bool))  # one voxel too thick everywhere
    blob = np.zeros_like(truth)
    blob[2:5, 33:36, 33:36] = True  # 27 voxels far from the tube
    pred = (thick & ~truth[:, :, :]) | truth | blob
    pred[10:30, 19, 19] = False  # and a few missed
    a = _anatomy()(truth, pred)
    border = int((thick & ~truth).sum())
    assert a["fp"] == border + 27 and a["fn"] == 20 and a["tp"] == int(truth.sum()) - 20
    assert a["fp_touching"] == border and a["fp_within_1"] == pytest.approx(border / (border + 27))
    assert a["fp_beyond_5"] == pytest.approx(27 / (border + 27))
    assert a["fp_in_own_structures"] == pytest.approx(27 / (border + 27))
    assert a["precision"] == pytest.approx(a["tp"] / a["predicted"])


def test_no_false_positives_gives_zero_shares_not_nan():
    truth = np.zeros((8, 8, 8), bool)
    truth[2:4, 2:4, 2:4] = True
    a = _anatomy()(truth, truth.copy())
    assert a["fp"] == 0 and a["fp_within_1"] == 0.0 and a["fp_in_own_structures"] == 0.0 and a["recall"] == 1.0
