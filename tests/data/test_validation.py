"""Every rejection of `vesselgan patches`: exit 2, one line naming case and problem, no output."""
import gzip

import numpy as np
import pytest

from tests.conftest import make_case, make_volume, write_nifti


def corrupt(root):
    make_case(root, "a")
    p = root / "images" / "a.nii.gz"
    p.write_bytes(gzip.compress(p.read_bytes()[:0] + b"not a nifti at all" * 10))


def truncated(root):
    make_case(root, "a")
    p = root / "images" / "a.nii.gz"
    p.write_bytes(p.read_bytes()[:200])


def image_without_label(root):
    make_case(root, "a")
    (root / "labels" / "a.nii.gz").unlink()
    make_case(root, "b")


def label_without_image(root):
    make_case(root, "a")
    (root / "images" / "a.nii.gz").unlink()
    make_case(root, "b")


def shape_mismatch(root):
    make_case(root, "a")
    _, label = make_volume((24, 20, 6))
    write_nifti(root / "labels" / "a.nii.gz", label)


def affine_mismatch(root):
    make_case(root, "a")
    _, label = make_volume()
    write_nifti(root / "labels" / "a.nii.gz", label, np.diag([2.0, 1, 1, 1]))


def four_d(root):
    make_case(root, "a")
    image, _ = make_volume()
    write_nifti(root / "images" / "a.nii.gz", np.stack([image, image], -1))


def one_d(root):
    write_nifti(root / "images" / "a.nii.gz", np.zeros(50, np.float32))
    write_nifti(root / "labels" / "a.nii.gz", np.zeros(50, np.uint8))


def nan_voxel(root):
    image, label = make_volume()
    image[3, 3, 3] = np.nan
    write_nifti(root / "images" / "a.nii.gz", image)
    write_nifti(root / "labels" / "a.nii.gz", label)


def inf_voxel(root):
    image, label = make_volume()
    image[3, 3, 3] = np.inf
    write_nifti(root / "images" / "a.nii.gz", image)
    write_nifti(root / "labels" / "a.nii.gz", label)


def constant_image(root):
    image, label = make_volume()
    write_nifti(root / "images" / "a.nii.gz", np.zeros_like(image))  # no masks/: the automatic mask
    write_nifti(root / "labels" / "a.nii.gz", label)


def label_values(root):
    image, label = make_volume()
    label[label == 1] = 2
    write_nifti(root / "images" / "a.nii.gz", image)
    write_nifti(root / "labels" / "a.nii.gz", label)


def too_small(root):
    make_case(root, "a", shape=(12, 24, 6), n_vessels=20)


def no_vessel(root):
    make_case(root, "a", n_vessels=0)


def duplicate_ids(root):
    make_case(root, "a")
    image, _ = make_volume()
    write_nifti(root / "images" / "a.nii", image)


def empty_folder(root):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)


def no_folder(root):
    root.mkdir(parents=True)


CASES = [
    (corrupt, "'a'", "cannot read image"),
    (truncated, "'a'", "cannot read image"),
    (image_without_label, "'a'", "image without label"),
    (label_without_image, "'a'", "label without image"),
    (shape_mismatch, "'a'", "shape"),
    (affine_mismatch, "'a'", "affines differ"),
    (four_d, "'a'", "4D"),
    (one_d, "'a'", "1D"),
    (nan_voxel, "'a'", "NaN or Inf"),
    (inf_voxel, "'a'", "NaN or Inf"),
    (constant_image, "'a'", "image is constant"),
    (label_values, "'a'", "label values must be 0/1, found 2"),
    (too_small, "'a'", "smaller than the 16x16 patch"),
    (no_vessel, "'a'", "no vessel voxel"),
    (duplicate_ids, "'a'", "duplicate case id"),
    (empty_folder, "data", "contains no NIfTI cases"),
    (no_folder, "data", "empty or has no images/"),
]


@pytest.mark.parametrize("make, names, problem", CASES, ids=[c[0].__name__ for c in CASES])
def test_rejection(tmp_path, cli, tiny_config, make, names, problem):
    data = tmp_path / "data"
    make(data)
    out = tmp_path / "out"
    code, stdout, stderr = cli("patches", "--data", data, "--out", out, "--config", tiny_config)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert names in lines[0] and problem in lines[0], lines[0]
    assert "Traceback" not in stderr
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_label_map_makes_other_values_valid(tmp_path, cli, tiny_config):
    data = tmp_path / "data"
    label_values(data)
    cfg = tmp_path / "map.yaml"
    cfg.write_text(tiny_config.read_text() + "  label_map: {0: 0, 2: 1}\n  split: {train: 1.0, val: 0.0, test: 0.0}\n")
    code, _, err = cli("patches", "--data", data, "--out", tmp_path / "out", "--config", cfg)
    assert code == 0, err
    from tf_vesselgan.data.pipeline import labelled_patches

    _, labels = labelled_patches(tmp_path / "out", 10, "train")
    assert set(np.unique(labels)) == {0, 1}  # the 2s of the source arrived as 1s
    assert labels.sum() > 0


def test_missing_data_folder(tmp_path, cli):
    code, _, err = cli("patches", "--data", tmp_path / "nope", "--out", tmp_path / "out")
    assert code == 2 and "does not exist" in err


def test_existing_output_is_not_touched(tmp_path, cli, tiny_config):
    data = tmp_path / "data"
    make_case(data, "a")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, _, err = cli("patches", "--data", data, "--out", out, "--config", tiny_config)
    assert code == 2 and "already exists" in err
    assert (out / "keep.txt").read_text() == "x"


def test_bad_config_is_exit_2(tmp_path, cli):
    data = tmp_path / "data"
    make_case(data, "a")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data:\n  n_vesel: 3\n")
    code, _, err = cli("patches", "--data", data, "--out", tmp_path / "out", "--config", cfg)
    assert code == 2 and "data.n_vesel" in err and str(cfg) in err


def test_unwritable_output_folder_is_one_line_exit_2(tmp_path, cli):
    import os

    if os.geteuid() == 0:  # root may write anywhere: use a path under a regular file instead
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "out"
    code, _, err = cli("phantom", "--out", out, "--cases", 1)
    assert code == 2 and "error:" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
