"""Fig. 4 of the transfer study reads the second data set through the one case
discovery, so an nnU-Net-layout data set works as well as images/ + labels/."""
import csv

import numpy as np
import pytest

from tests.conftest import make_volume, write_nifti


@pytest.mark.parametrize("layout", ["folders", "nnunet"])
def test_fig4_reads_either_layout(tmp_path, layout):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tf_vesselgan.experiments.transfer import fig4

    second = tmp_path / "second"
    image, label = make_volume(seed=1)
    if layout == "folders":
        write_nifti(second / "images" / "c1.nii.gz", image)
        write_nifti(second / "labels" / "c1.nii.gz", label)
    else:
        (second / "dataset.json").parent.mkdir(parents=True)
        (second / "dataset.json").write_text('{"channel_names": {"0": "TOF"}, "labels": {"background": 0, '
                                             '"vessel": 1}, "file_ending": ".nii.gz"}')
        write_nifti(second / "imagesTr" / "c1_0000.nii.gz", image)
        write_nifti(second / "labelsTr" / "c1.nii.gz", label)
    out = tmp_path / "study"
    for arm in ("scratch", "pretrained"):
        folder = out / f"t_eval_{arm}_n1"
        folder.mkdir(parents=True)
        with open(folder / "per_patient.csv", "w", newline="") as f:
            csv.writer(f).writerows([["case", "dice"], ["c1", "0.5"]])
        write_nifti(folder / "c1_segmentation.nii.gz", label.astype(np.uint8))
    fig4(tmp_path / "fig4.png", out, second, 1, plt)
    assert (tmp_path / "fig4.png").stat().st_size > 1000
