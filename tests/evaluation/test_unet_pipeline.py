"""train-unet → segment → evaluate on tiny volumes; tuning with resume; U-net shape."""
import csv
import json

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import write_nifti
from tf_vesselgan.evaluation.evaluate import THRESHOLD_GRID
from tf_vesselgan.models.unet import build_unet

YAML = """seed: 3
data:
  patch_size: 32
  n_vessel: 30
  n_random: 30
  split: {train: 0.5, val: 0.25, test: 0.25}
unet:
  width: 0.125
  batch_size: 16
  epochs: 2
  steps_per_epoch: 4
  inference_stride: 16
  max_trials: 3
  tune_epochs: 1
"""


def test_half_unet_parameter_count_and_shapes():
    m = build_unet(1.0)
    assert 7.7e6 < m.count_params() < 7.9e6
    assert m.compute_output_shape((2, 96, 96, 1)) == (2, 96, 96, 1)
    assert build_unet(0.25).count_params() < m.count_params() / 10


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tf_vesselgan.config import load_config
    from tf_vesselgan.data.build import build_patches

    root = tmp_path_factory.mktemp("unet")
    rng = np.random.default_rng(0)
    affine = np.diag([0.5, 0.5, 0.7, 1.0])
    affine[:3, 3] = [-10, 5, 3]
    for i in range(4):
        label = np.zeros((40, 40, 6), np.uint8)
        for _ in range(3):  # straight bright tubes
            x, y = rng.integers(6, 34, 2)
            label[x - 1:x + 1, y - 1:y + 1, :] = 1
        image = rng.normal(100, 8, label.shape) + 120 * label
        write_nifti(root / "data" / "images" / f"v{i}.nii.gz", image.astype(np.float32), affine)
        write_nifti(root / "data" / "labels" / f"v{i}.nii.gz", label, affine)
    (root / "cfg.yaml").write_text(YAML)
    build_patches(root / "data", root / "patches", load_config(root / "cfg.yaml"), progress=False)
    return root


def test_train_segment_evaluate(tiny, cli, tmp_path):
    run = tmp_path / "unet"
    code, out, err = cli("train-unet", "--train", "real", "--patches", tiny / "patches", "--out", run,
                         "--config", tiny / "cfg.yaml")
    assert code == 0, err
    status = json.loads((run / "run.json").read_text())
    assert status["splits"]["test"] and (run / "unet.keras").exists() and (run / "history.csv").exists()

    code, out, err = cli("evaluate", "--model", run, "--data", tiny / "data", "--cases", "test", "--out", tmp_path / "ev")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "ev" / "per_patient.csv")))
    assert [r["case"] for r in rows] == status["splits"]["test"]
    for r in rows:
        assert 0.0 <= float(r["dice"]) <= 1.0 and float(r["hd95_mm"]) >= 0
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["dice"]["mean"] == pytest.approx(np.mean([float(r["dice"]) for r in rows]), abs=1e-6)
    case = rows[0]["case"]
    src = nib.load(str(tiny / "data" / "images" / f"{case}.nii.gz"))
    seg = nib.load(str(tmp_path / "ev" / f"{case}_segmentation.nii.gz"))
    prob = nib.load(str(tmp_path / "ev" / f"{case}_probability.nii.gz"))
    assert np.allclose(seg.affine, src.affine) and seg.shape == src.shape
    assert np.allclose(seg.header.get_zooms(), src.header.get_zooms())
    p = prob.get_fdata()
    assert p.min() >= 0 and p.max() <= 1
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1}

    code, out, err = cli("segment", "--model", run, "--data", tiny / "data", "--cases", "nope", "--out", tmp_path / "s")
    assert code == 2 and "'nope'" in err and not (tmp_path / "s").exists()
    for command in ("segment", "evaluate"):
        for args, what in ((("--cases", ","), "no case ids"), (("--cases", " "), "no case ids"),
                           (("--threshold", "5"), "in [0, 1]"), (("--threshold", "nan"), "in [0, 1]")):
            code, out, err = cli(command, "--model", run, "--data", tiny / "data", *args, "--out", tmp_path / "s")
            assert code == 2 and what in err and len(err.strip().splitlines()) == 1, (command, args, err)
            assert not (tmp_path / "s").exists()


def test_tuned_threshold_maximises_validation_dice(tiny, cli, tmp_path):
    cfg = tmp_path / "tt.yaml"
    cfg.write_text(YAML.replace("  inference_stride: 16", "  inference_stride: 16\n  tune_threshold: true"))
    run = tmp_path / "unet"
    assert cli("train-unet", "--train", "real", "--patches", tiny / "patches", "--out", run, "--config", cfg)[0] == 0
    assert cli("evaluate", "--model", run, "--data", tiny / "data", "--cases", "val", "--out", tmp_path / "tuned")[0] == 0
    status = json.loads((run / "run.json").read_text())
    tuned = json.loads((tmp_path / "tuned" / "summary.json").read_text())
    assert tuned["threshold"] == status["tuned_threshold"]
    assert tuned["dice"]["mean"] == pytest.approx(status["tuned_threshold_val_dice"], abs=1e-6)
    assert status["tuned_threshold_grid"] == THRESHOLD_GRID.tolist()
    # a threshold tuned on another grid (an older version's) is tuned again, to the same value
    old = dict(status, tuned_threshold=0.123, tuned_threshold_grid=[0.123])
    (run / "run.json").write_text(json.dumps(old))
    assert cli("evaluate", "--model", run, "--data", tiny / "data", "--cases", "val", "--out", tmp_path / "re")[0] == 0
    assert json.loads((run / "run.json").read_text())["tuned_threshold"] == status["tuned_threshold"]
    for t in (0.1, 0.5, 0.9):
        out = tmp_path / f"t{t}"
        assert cli("evaluate", "--model", run, "--data", tiny / "data", "--cases", "val", "--out", out,
                   "--threshold", t)[0] == 0
        assert json.loads((out / "summary.json").read_text())["dice"]["mean"] <= tuned["dice"]["mean"] + 1e-9


def test_transfer_init_starts_from_the_other_weights(tiny, cli, tmp_path):
    import keras

    a = tmp_path / "a"
    assert cli("train-unet", "--train", "real", "--patches", tiny / "patches", "--out", a, "--config", tiny / "cfg.yaml")[0] == 0
    b = tmp_path / "b"
    assert cli("train-unet", "--train", "real", "--patches", tiny / "patches", "--out", b, "--config", tiny / "cfg.yaml",
               "--init", a, "--epochs", 1, "--steps-per-epoch", 1)[0] == 0
    wa = keras.models.load_model(str(a / "unet.keras"), compile=False).get_weights()
    wb = keras.models.load_model(str(b / "unet.keras"), compile=False).get_weights()
    fresh = build_unet(0.125).get_weights()
    # one small step away from the initialisation, far from a fresh model
    da = sum(np.abs(x - y).sum() for x, y in zip(wa, wb))
    df = sum(np.abs(x - y).sum() for x, y in zip(fresh, wb))
    assert da < df / 10


def test_training_with_augmentation_is_reproducible_from_the_seed(tiny, cli, tmp_path):
    import keras

    cfg = tmp_path / "aug.yaml"
    cfg.write_text(YAML.replace("  epochs: 2", "  epochs: 2\n  augment: true"))
    weights = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert cli("train-unet", "--train", "real", "--patches", tiny / "patches", "--out", tmp_path / name,
                   "--config", cfg, "--seed", seed)[0] == 0
        weights[name] = keras.models.load_model(str(tmp_path / name / "unet.keras"), compile=False).get_weights()
    for x, y in zip(weights["a"], weights["b"]):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(weights["a"], weights["c"]))


def test_synthetic_training_needs_samples_and_not_global_norm(tiny, cli, tmp_path):
    code, _, err = cli("train-unet", "--train", "synthetic", "--patches", tiny / "patches", "--out", tmp_path / "x",
                       "--config", tiny / "cfg.yaml")
    assert code == 2 and "--samples" in err
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "samples.npz", image=rng.uniform(-1, 1, (40, 32, 32)).astype(np.float32),
             label=(rng.random((40, 32, 32)) > 0.9).astype(np.uint8))
    code, _, err = cli("train-unet", "--train", "both", "--patches", tiny / "patches", "--samples",
                       tmp_path / "samples.npz", "--out", tmp_path / "y", "--config", tiny / "cfg.yaml")
    assert code == 0, err
    assert json.loads((tmp_path / "y" / "run.json").read_text())["normalization"] == "minmax"


def _samples(path, n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, image=rng.uniform(-1, 1, (n, size, size)).astype(np.float32),
             label=(rng.random((n, size, size)) > 0.9).astype(np.uint8))
    return path


def test_several_sample_sets_are_pooled_and_recorded(tiny, cli, tmp_path):
    a, b = _samples(tmp_path / "a.npz", 40), _samples(tmp_path / "b.npz", 24, seed=1)
    code, _, err = cli("train-unet", "--train", "synthetic", "--patches", tiny / "patches", "--samples", a, b,
                       "--out", tmp_path / "u", "--config", tiny / "cfg.yaml")
    assert code == 0, err
    status = json.loads((tmp_path / "u" / "run.json").read_text())
    assert status["training_pairs"] == 64 and status["samples"] == [str(a), str(b)]


@pytest.mark.parametrize("command", ["train-unet", "tune"])
@pytest.mark.parametrize("bad, message", [
    (lambda d: d / "missing.npz", "no samples file"),
    (lambda d: _samples(d / "big.npz", 8, size=64), "samples of 64x64 pixels, the U-net's patches are 32x32"),
    (lambda d: (d / "junk.npz").write_text("not a zip") and d / "junk.npz", "not a samples.npz"),
])
def test_bad_samples_fail_in_one_line_before_the_run_folder_exists(tiny, cli, tmp_path, command, bad, message):
    good = _samples(tmp_path / "good.npz", 16)
    code, _, err = cli(command, "--train", "synthetic", "--patches", tiny / "patches", "--samples", good,
                       bad(tmp_path), "--out", tmp_path / "run", "--config", tiny / "cfg.yaml")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # three U-net trials and a final one, about 40 s; test_tune_loads_its_samples_once stays fast
def test_tune_runs_three_trials_and_resumes(tiny, cli, tmp_path):
    out = tmp_path / "tune"
    code, stdout, err = cli("tune", "--patches", tiny / "patches", "--out", out, "--config", tiny / "cfg.yaml", "--no-final")
    assert code == 0, err
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials) == 3
    for t in trials:
        assert 1e-5 <= t["learning_rate"] <= 1e-3 and 0.0 <= t["dropout"] <= 0.5
    best = json.loads((out / "best_hparams.json").read_text())
    assert max(t["val_dice"] for t in trials) == pytest.approx(
        next(t["val_dice"] for t in trials if t["learning_rate"] == best["learning_rate"]))
    mtimes = {p: p.stat().st_mtime for p in (out / "tuner").rglob("trial.json")}
    code, stdout, err = cli("tune", "--patches", tiny / "patches", "--out", out, "--config", tiny / "cfg.yaml")
    assert code == 0, err
    assert {p: p.stat().st_mtime for p in (out / "tuner").rglob("trial.json")} == mtimes  # no trial redone
    assert (out / "final" / "unet.keras").exists()
    assert json.loads((out / "final" / "run.json").read_text())["learning_rate"] == pytest.approx(best["learning_rate"])


def test_validation_pass_knows_its_length(tiny, tmp_path):
    """Keras warned "Your input ran out of data" after every validation pass over the
    (unknown-length) validation TFRecords; the pass now has a known number of batches."""
    import warnings

    from tf_vesselgan.config import load_config
    from tf_vesselgan.training.unet_trainer import train_unet

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_unet("real", tiny / "patches", tmp_path / "u", load_config(tiny / "cfg.yaml"), verbose=0)
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    history = list(csv.DictReader(open(tmp_path / "u" / "history.csv")))
    assert history and all(float(r["val_dice_metric"]) == pytest.approx(float(r["val_dice_metric"])) for r in history)
    assert summary["best_val_dice"] == pytest.approx(max(float(r["val_dice_metric"]) for r in history))


def test_tune_loads_its_samples_once(tiny, tmp_path, monkeypatch):
    """The search and the final U-net train on one loading of --samples."""
    import dataclasses

    from tf_vesselgan.config import load_config
    from tf_vesselgan.training import sampling
    from tf_vesselgan.tuning.tuner import tune

    loads = []
    real_load = sampling.load_sample_sets
    monkeypatch.setattr(sampling, "load_sample_sets", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    cfg = load_config(tiny / "cfg.yaml")
    cfg = dataclasses.replace(cfg, unet=dataclasses.replace(cfg.unet, max_trials=1))
    tune("synthetic", tiny / "patches", tmp_path / "tune", cfg, samples=_samples(tmp_path / "s.npz", 16))
    assert (tmp_path / "tune" / "final" / "unet.keras").exists()
    assert len(loads) == 1
