"""Identifier scan on planted leaks; `vesselgan privacy` end to end on a tiny GAN."""
import json
import zipfile

import numpy as np
import pytest

from tests.conftest import make_case, write_nifti
from tests.training.test_train_cli import GAN_YAML
from tf_vesselgan.privacy.identifiers import identifier_strings, scan

# the tiny GAN of the train-gan tests, one epoch, no image grid
YAML = GAN_YAML.replace("epochs: 2", "epochs: 1").replace("image_grid: 4", "image_grid: 0")


def test_scan_finds_ids_in_zip_members_gzip_headers_and_affines(tmp_path):
    np.savez(tmp_path / "clean.npz", image=np.zeros((2, 4, 4), np.float32))
    np.savez(tmp_path / "leaky.npz", image=np.zeros((2, 4, 4), np.float32), source=np.array("Patient_0042"))
    (tmp_path / "meta.json").write_text(json.dumps({"from": "/data/hospital/images/patient_0042.nii.gz"}))
    img = write_nifti(tmp_path / "s_image.nii.gz", np.zeros((4, 4, 1), np.float32))
    src_affine = np.diag([0.4, 0.4, 0.6, 1.0])
    write_nifti(tmp_path / "geom.nii.gz", np.zeros((4, 4, 1), np.float32), src_affine)
    import nibabel as nib

    desc = nib.load(str(img))
    desc.header["descrip"] = b"scan of someone"
    nib.save(desc, str(tmp_path / "desc.nii.gz"))
    needles, short = identifier_strings(["patient_0042", "p7"])
    assert short == ["p7"]
    found = scan([tmp_path], needles, [src_affine])
    by_file = {(f["file"].split("/")[-1], f["kind"]) for f in found}
    assert ("leaky.npz", "identifier") in by_file  # case-insensitive, inside the zip member
    assert ("meta.json", "identifier") in by_file
    assert ("desc.nii.gz", "header text") in by_file
    assert ("geom.nii.gz", "source affine") in by_file
    assert not any(f["file"].endswith(("clean.npz", "s_image.nii.gz")) for f in found)


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    from tf_vesselgan.cli.main import main

    root = tmp_path_factory.mktemp("privacy")
    for i in range(4):
        make_case(root / "data", f"patient_{i:02d}", shape=(100, 100, 4), seed=i, n_vessels=60)
    (root / "gan.yaml").write_text(YAML)
    assert main(["patches", "--data", str(root / "data"), "--out", str(root / "patches"),
                 "--config", str(root / "gan.yaml")]) == 0
    assert main(["train-gan", "--patches", str(root / "patches"), "--out", str(root / "gan"),
                 "--config", str(root / "gan.yaml")]) == 0
    assert main(["sample", "--run", str(root / "gan"), "--n", "40", "--out", str(root / "samples")]) == 0
    return root


def test_privacy_cli_writes_report_with_numbers_from_the_run(gan_run, cli, tmp_path):
    out = tmp_path / "audit"
    code, stdout, err = cli("privacy", "--run", gan_run / "gan", "--patches", gan_run / "patches", "--out", out,
                            "--n", 30, "--n-attack", 16, "--data", gan_run / "data",
                            "--samples", gan_run / "samples" / "samples.npz")
    assert code in (0, 1), err
    r = json.loads((out / "privacy.json").read_text())
    assert (code == 1) == bool(r["verdict"])
    assert set(r["membership"]) == {"distance to closest sample (black box)", "critic score (white box, LOGAN)"}
    mem = r["memorisation"]["pixel"]
    assert mem["n_synthetic"] == 40 and mem["n_train"] == 32 and mem["n_holdout"] == 32
    assert 0.0 <= mem["memorised_fraction"] <= 1.0
    assert r["membership"]["critic score (white box, LOGAN)"]["n_members"] == 16
    assert r["identifiers"] == []
    md = (out / "privacy.md").read_text()
    assert f"{mem['memorised_fraction']:.1%}" in md and f"{mem['threshold']:.3f}" in md
    for png in ("dcr_hist.png", "closest_pairs.png", "roc.png"):
        assert (out / png).stat().st_size > 1000


def test_privacy_fails_on_a_planted_case_id_in_sample_metadata(gan_run, cli, tmp_path):
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    with np.load(gan_run / "samples" / "samples.npz") as z:
        np.savez(leaky / "samples.npz", image=z["image"], label=z["label"], note=np.array("from patient_01"))
    code, stdout, err = cli("privacy", "--run", gan_run / "gan", "--patches", gan_run / "patches",
                            "--out", tmp_path / "audit", "--n-attack", 16, "--samples", leaky / "samples.npz")
    assert code == 1, err
    r = json.loads((tmp_path / "audit" / "privacy.json").read_text())
    assert any("patient_01" in f["detail"] and f["file"].endswith("samples.npz") for f in r["identifiers"])
    assert "identifier findings" in stdout
    assert zipfile.is_zipfile(leaky / "samples.npz")


def test_privacy_rejects_patches_the_gan_was_not_trained_on(gan_run, cli, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(YAML.replace("n_vessel: 8", "n_vessel: 6"))
    assert cli("patches", "--data", gan_run / "data", "--out", tmp_path / "p2", "--config", other)[0] == 0
    code, _, err = cli("privacy", "--run", gan_run / "gan", "--patches", tmp_path / "p2", "--out", tmp_path / "a")
    assert code == 2 and "other patches" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("layout", ["folders", "nnunet"])
def test_source_names_and_affines_are_found_in_either_data_layout(tmp_path, layout):
    from tests.conftest import make_volume
    from tf_vesselgan.privacy.identifiers import source_affines

    data = tmp_path / "data"
    affine = np.diag([0.43, 0.43, 0.61, 1.0])
    image, label = make_volume()
    if layout == "folders":
        write_nifti(data / "images" / "hospital_case.nii.gz", image, affine)
        write_nifti(data / "labels" / "hospital_case.nii.gz", label, affine)
    else:
        (data / "dataset.json").parent.mkdir(parents=True)
        (data / "dataset.json").write_text('{"channel_names": {"0": "TOF"}, "labels": {"background": 0, "vessel": 1},'
                                           ' "file_ending": ".nii.gz"}')
        write_nifti(data / "imagesTr" / "hospital_case_0000.nii.gz", image, affine)
        write_nifti(data / "labelsTr" / "hospital_case.nii.gz", label, affine)
    needles, _ = identifier_strings([], data)
    source = "hospital_case_0000.nii.gz" if layout == "nnunet" else "hospital_case.nii.gz"
    assert source in needles
    np.testing.assert_allclose(source_affines(data)[0], affine)
    out = tmp_path / "out"
    out.mkdir()
    (out / "meta.json").write_text(json.dumps({"from": source}))
    write_nifti(out / "copy.nii.gz", np.zeros((4, 4, 1), np.float32), affine)
    kinds = {(f["file"].split("/")[-1], f["kind"]) for f in scan([out], needles, source_affines(data))}
    assert kinds == {("meta.json", "identifier"), ("copy.nii.gz", "source affine")}
