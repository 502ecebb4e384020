"""Patch content, split, manifest and determinism of `vesselgan patches`."""
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import make_case, write_nifti
from tf_vesselgan.data.patches import auto_brain_mask, extract_patches, sample_centres
from tf_vesselgan.data.records import decode


def read_split(out, split, size=16):
    manifest = json.loads((out / "manifest.json").read_text())
    comp = "GZIP" if manifest["compression"] == "GZIP" else ""
    recs = []
    for shard in manifest["shards"][split]:
        for r in tf.data.TFRecordDataset(str(out / shard["file"]), compression_type=comp):
            recs.append({k: v.numpy() for k, v in decode(r, size).items()})
    return recs


@pytest.fixture
def built(tmp_path, cli, tiny_config):
    data = tmp_path / "data"
    for i in range(5):
        make_case(data, f"case{i}", seed=i)
    out = tmp_path / "out"
    code, stdout, err = cli("patches", "--data", data, "--out", out, "--config", tiny_config, "--seed", 3)
    assert code == 0, err
    return data, out, stdout


def test_manifest_split_and_counts(built):
    _, out, stdout = built
    m = json.loads((out / "manifest.json").read_text())
    ids = [c for s in m["splits"].values() for c in s]
    assert sorted(ids) == [f"case{i}" for i in range(5)]  # covers every case
    assert len(set(ids)) == len(ids)  # disjoint
    for split, cases in m["splits"].items():
        assert m["counts"][split] == 10 * len(cases)
        assert sum(s["count"] for s in m["shards"][split]) == 10 * len(cases)
        assert len(read_split(out, split)) == 10 * len(cases)
    assert (out / "config.yaml").exists()
    assert "5 cases" in stdout and "50 patches" in stdout


def test_vessel_patches_have_label_at_centre_and_no_duplicates(built):
    _, out, _ = built
    recs = read_split(out, "train")
    vessel = [r for r in recs if r["kind"] == 0]
    assert len(vessel) == len(recs) // 2
    assert all(r["label"][8, 8] == 1 for r in vessel)
    keys = {(int(r["case_index"]), r["image"].tobytes()) for r in recs}
    assert len(keys) == len(recs)


def test_unet_statistics_come_from_training_cases_only(built):
    _, out, _ = built
    m = json.loads((out / "manifest.json").read_text())
    train = np.stack([r["image"] for r in read_split(out, "train")]).astype(np.float64)
    assert m["normalization"]["mean"] == pytest.approx(train.mean(), rel=1e-9)
    assert m["normalization"]["std"] == pytest.approx(train.std(), rel=1e-6)
    everything = np.concatenate([train] + [np.stack([r["image"] for r in read_split(out, s)]) for s in ("val", "test")])
    assert m["normalization"]["mean"] != pytest.approx(everything.mean(), rel=1e-9)


def test_same_seed_gives_byte_identical_shards(built, cli, tiny_config, tmp_path):
    data, out, _ = built
    again = tmp_path / "again"
    assert cli("patches", "--data", data, "--out", again, "--config", tiny_config, "--seed", 3)[0] == 0
    for f in sorted(out.iterdir()):
        assert f.read_bytes() == (again / f.name).read_bytes(), f.name
    other = tmp_path / "other"
    assert cli("patches", "--data", data, "--out", other, "--config", tiny_config, "--seed", 4)[0] == 0
    a = json.loads((out / "manifest.json").read_text())
    b = json.loads((other / "manifest.json").read_text())
    assert a["splits"] != b["splits"] or (out / "train-00000-of-00004.tfrecord").read_bytes() != (other / "train-00000-of-00004.tfrecord").read_bytes()


GOOD_DATASET_JSON = ('{"channel_names": {"0": "TOF"}, "labels": {"background": 0, "vessel": 1}, '
                     '"numTraining": 3, "file_ending": ".nii.gz"}')


@pytest.mark.parametrize("text, problem", [
    ("[1, 2]", "top level must be an object"),
    ('{"labels": {"background": 0, "vessel": 1}, "file_ending": ".nii.gz"}', "missing 'channel_names'"),
    ('{"channel_names": {"0": "TOF"}, "file_ending": ".nii.gz"}', "missing 'labels'"),
    ('{"channel_names": {"0": "TOF"}, "labels": {"background": 0, "vessel": 1}}', "missing 'file_ending'"),
    ('{"channel_names": {"0": "TOF"}, "labels": {"background": 0, "vessel": 1}, "file_ending": ".mha"}',
     "must be .nii.gz or .nii"),
    ('{"channel_names": {"0": "T1", "1": "T2"}, "labels": {"background": 0, "vessel": 1}, "file_ending": ".nii.gz"}',
     "exactly one channel"),
    ('{"channel_names": {"0": "TOF"}, "labels": {"vessel": 1}, "file_ending": ".nii.gz"}', "background 0"),
    ("{not json", "not valid JSON"),
])
@pytest.mark.parametrize("command", ["patches", "info"])
def test_broken_nnunet_dataset_json_is_one_clear_error(tmp_path, cli, tiny_config, text, problem, command):
    from tests.conftest import make_volume

    root = tmp_path / "Dataset001"
    image, label = make_volume(seed=0)
    write_nifti(root / "imagesTr" / "c0_0000.nii.gz", image)
    write_nifti(root / "labelsTr" / "c0.nii.gz", label)
    (root / "dataset.json").write_text(text)
    args = ("--data", root) if command == "info" else ("--data", root, "--out", tmp_path / "out", "--config", tiny_config)
    code, _, err = cli(command, *args)
    assert code == 2 and problem in err and "dataset.json" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_nnunet_layout_is_detected(tmp_path, cli, tiny_config):
    from tests.conftest import make_volume

    root = tmp_path / "Dataset001"
    (root / "dataset.json").parent.mkdir(parents=True)
    (root / "dataset.json").write_text(GOOD_DATASET_JSON)
    for i in range(3):
        image, label = make_volume(seed=i)
        write_nifti(root / "imagesTr" / f"c{i}_0000.nii.gz", image)
        write_nifti(root / "labelsTr" / f"c{i}.nii.gz", label)
    out = tmp_path / "out"
    code, _, err = cli("patches", "--data", root, "--out", out, "--config", tiny_config)
    assert code == 0, err
    m = json.loads((out / "manifest.json").read_text())
    assert m["layout"] == "nnunet" and sorted(m["cases"]) == ["c0", "c1", "c2"]


def test_border_centres_keep_their_voxel_at_patch_centre():
    image = np.arange(10 * 10 * 2, dtype=np.float32).reshape(10, 10, 2)
    label = np.zeros((10, 10, 2), np.uint8)
    label[0, 9, 1] = 1
    centre = np.ravel_multi_index((0, 9, 1), image.shape)
    imgs, labs = extract_patches(image, label, np.array([centre]), 8)
    assert imgs.shape == (1, 8, 8) and labs[0, 4, 4] == 1
    assert imgs[0, 4, 4] == image[0, 9, 1]
    assert imgs[0, 0, 0] == image.min()  # padding, not wrap-around


def test_sample_centres_unique_and_from_the_right_sets():
    rng = np.random.default_rng(0)
    label = np.zeros((20, 20, 5), np.uint8)
    label[5:8, 5:8, :] = 1
    mask = np.zeros_like(label, bool)
    mask[2:18, 2:18, :] = True
    centres, kinds = sample_centres(label, mask, 30, 100, rng)
    assert len(set(centres.tolist())) == 130
    assert label.flat[centres[kinds == 0]].all()
    assert mask.flat[centres[kinds == 1]].all()
    with pytest.raises(ValueError):
        sample_centres(label, mask, 1000, 0, rng)


def test_auto_mask_finds_the_head():
    img = np.zeros((40, 40, 20), np.float32)
    x, y, z = np.meshgrid(*[np.arange(n) - n / 2 for n in img.shape], indexing="ij")
    head = x**2 + y**2 + (2 * z) ** 2 < 15**2
    img[head] = 100 + np.random.default_rng(0).normal(0, 5, head.sum())
    mask = auto_brain_mask(img)
    assert mask.shape == img.shape
    inter = (mask & head).sum()
    assert 2 * inter / (mask.sum() + head.sum()) > 0.9
