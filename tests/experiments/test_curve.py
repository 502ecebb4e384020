"""The quality-vs-time curve: snapshot choice, rows and ratios from the files, and a tiny
study end to end (slow)."""
import csv
import json
import os
import subprocess
import sys

import pytest

from tests.experiments.test_run import TINY
from tf_vesselgan.config import from_dict, study_gan_config
from tf_vesselgan.experiments.curve import curve_points, curve_rows, pick_snapshot
from tf_vesselgan.training.snapshots import write_snapshot_row


def _per_patient(folder, dices):
    folder.mkdir(parents=True)
    with open(folder / "per_patient.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["case", "dice", "hd95_mm"])
        w.writeheader()
        w.writerows({"case": f"c{i}", "dice": d, "hd95_mm": 5.0} for i, d in enumerate(dices))


def test_snapshot_choice_points_and_ratios(tmp_path):
    run = tmp_path / "gan_wgan-gp-sn"
    run.mkdir()
    for epoch, sec in ((2, 100.0), (4, 250.0), (6, 400.0)):
        write_snapshot_row(run, {"epoch": epoch, "machine_seconds": sec, "label_threshold": 0.3,
                                 "file": f"snapshots/epoch_{epoch:05d}.keras"})
    assert pick_snapshot(run, 60) is None
    assert pick_snapshot(run, 300)["epoch"] == "4"
    assert pick_snapshot(run, 1e9)["epoch"] == "6"
    write_snapshot_row(run, {"epoch": 4, "machine_seconds": 260.0, "file": "x"})  # a resumed run redoes epoch 4
    assert [r["epoch"] for r in csv.DictReader(open(run / "snapshots.csv"))] == ["2", "4"]

    cfg = from_dict({"gan": {"max_seconds": 600, "snapshot_every": 2},
                     "study": {"gans": ["wgan-gp-sn"], "curve_minutes": [2, 5, 10, 20],
                               "gan_overrides": {"dcgan": {"max_seconds": 100}}}})
    assert curve_points(cfg, study_gan_config(cfg, "wgan-gp-sn")) == [2, 5]  # 10 min is the budget itself
    assert curve_points(cfg, study_gan_config(cfg, "dcgan")) == []

    _per_patient(tmp_path / "eval_real_test", [0.6, 0.4])
    _per_patient(tmp_path / "eval_synthetic_wgan-gp-sn_test", [0.45, 0.35])
    _per_patient(tmp_path / "curve_wgan-gp-sn_2min" / "eval_test", [0.1, 0.3])
    (tmp_path / "curve_wgan-gp-sn_2min" / "point.json").write_text(json.dumps(
        {"gan": "wgan-gp-sn", "minutes": 1.7, "snapshot": "snapshots/epoch_00002.keras", "label_threshold": 0.3}))
    (tmp_path / "curve_wgan-gp-sn_5min").mkdir()
    (tmp_path / "curve_wgan-gp-sn_5min" / "point.json").write_text(json.dumps({"gan": "wgan-gp-sn", "snapshot": None}))
    (run / "run.json").write_text(json.dumps({"machine_seconds": 590.0, "label_threshold": 0.25}))
    rows = curve_rows(tmp_path, cfg, {"wgan-gp-sn": study_gan_config(cfg, "wgan-gp-sn")})
    assert [(r["minutes"], r["snapshot"]) for r in rows] == [(1.7, "snapshots/epoch_00002.keras"),
                                                             (590.0 / 60, "generator.keras")]
    assert rows[0]["test_dice"] == pytest.approx(0.2) and rows[0]["ratio_to_real"] == pytest.approx(0.4)
    assert rows[1]["ratio_to_real"] == pytest.approx(0.8)


def test_curve_needs_snapshots(tmp_path, cli):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("fid_samples: 40}", "fid_samples: 40, curve_minutes: [1]}"))
    code, _, err = cli("run", cfg, "--out", tmp_path / "out")
    assert code == 2 and "snapshot_every" in err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_curve_study_end_to_end(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("image_grid: 0}", "image_grid: 0, snapshot_every: 1, epochs: 2, "
                                "label_threshold: auto, ema_decay: 0.9}")
                   .replace("gans: [wgan-gp-sn, dcgan]", "gans: [dcgan], privacy: false")
                   .replace("fid_samples: 40}", "fid_samples: 40, curve_minutes: [10]}"))
    out = tmp_path / "out"
    env = dict(os.environ, VESSELGAN_NO_PROGRESS="1")
    res = subprocess.run([sys.executable, "-m", "tf_vesselgan", "run", str(cfg), "--out", str(out)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "curve.csv")))
    assert [r["snapshot"] for r in rows] == ["snapshots/epoch_00002.keras", "generator.keras"]
    real = [float(r["dice"]) for r in csv.DictReader(open(out / "eval_real_test" / "per_patient.csv"))]
    point = [float(r["dice"]) for r in csv.DictReader(open(out / "curve_dcgan_10min" / "eval_test" / "per_patient.csv"))]
    if sum(real) > 0:
        assert float(rows[0]["ratio_to_real"]) == pytest.approx(sum(point) / sum(real))
    report = (out / "report.md").read_text()
    assert "Quality vs GAN training time" in report and (out / "curve.png").stat().st_size > 1000
