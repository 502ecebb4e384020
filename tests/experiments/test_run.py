"""`vesselgan run` end to end at a tiny size: killed mid-way, rerun, report numbers equal
the per-patient CSVs. Slow (about a minute): `make test-e2e`."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

TINY = """name: tiny
seed: 3
data: {n_vessel: 20, n_random: 20}
gan: {width: 0.03, batch_size: 4, n_critic: 2, epochs: 1, steps_per_epoch: 2, image_grid: 0}
unet: {width: 0.125, normalization: minmax, batch_size: 8, epochs: 1, steps_per_epoch: 2}
study: {kind: anonymization, gans: [wgan-gp-sn, dcgan], phantom_cases: 4, n_samples: 64, fid_samples: 40}
"""


@pytest.mark.slow
def test_run_resumes_after_kill_and_report_matches_csvs(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tf_vesselgan", "run", str(cfg), "--out", str(out)]
    env = dict(os.environ, VESSELGAN_NO_PROGRESS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "unet_real" / "run.json").exists():  # killed while training the first U-net
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.parent.name: p.read_text() for p in out.glob("*/.stage.json")}
    assert "gan_dcgan" in done_before and "unet_real" not in done_before
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in done_before:  # finished stages were skipped, their markers untouched
        assert (out / name / ".stage.json").read_text() == done_before[name]
    assert res.stdout.count("complete, skipped") == len(done_before)

    report = (out / "report.md").read_text()
    rows = {r["unet"]: r for r in csv.DictReader(open(out / "table2.csv"))}
    assert set(rows) == {"real", "synthetic_wgan-gp-sn", "synthetic_dcgan"}
    for name, row in rows.items():
        for split in ("val", "test"):
            patients = list(csv.DictReader(open(out / f"eval_{name}_{split}" / "per_patient.csv")))
            mean = np.mean([float(p["dice"]) for p in patients])
            assert float(row[f"{split}_dice"]) == pytest.approx(mean, abs=1e-9)
            assert f"{mean:.3f} ± " in report
            hd = np.mean([float(p["hd95_mm"]) for p in patients])
            assert f"{hd:.3f} ± " in report
    for r in csv.DictReader(open(out / "fid" / "fid.csv")):
        assert f"| {r['gan']} | {float(r['fid']):.3f} |" in report
    for arch in ("wgan-gp-sn", "dcgan"):
        audit = json.loads((out / f"privacy_{arch}" / "privacy.json").read_text())
        assert f"| {arch} | {'FAIL' if audit['verdict'] else 'PASS'} |" in report
    import matplotlib.image

    for fig in ("fig2_samples.png", "training_curves.png"):  # decodes, is a picture, not blank
        pixels = matplotlib.image.imread(str(out / fig))
        assert min(pixels.shape[:2]) > 100 and pixels[..., :3].std() > 0.02, fig
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.stdout.count("complete, skipped") == 18


def test_run_needs_data_unless_the_study_uses_the_phantom(tmp_path, cli):
    cfg = tmp_path / "real.yaml"
    cfg.write_text(TINY.replace("phantom_cases: 4", "phantom_cases: 0"))
    code, _, err = cli("run", cfg, "--out", tmp_path / "out")
    assert code == 2 and "--data is required" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("run", cfg, "--data", tmp_path / "missing", "--out", tmp_path / "out")
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("kind: anonymization", "kind: fig5"))
    code, _, err = cli("run", bad, "--out", tmp_path / "out")
    assert code == 2 and "study.kind" in err
    transfer = tmp_path / "transfer.yaml"
    transfer.write_text(TINY.replace("kind: anonymization", "kind: transfer"))
    code, _, err = cli("run", transfer, "--out", tmp_path / "out")
    assert code == 2 and "--transfer-data" in err
    over = tmp_path / "over.yaml"
    over.write_text(TINY.replace("fid_samples: 40}", "fid_samples: 40, gan_overrides: {dcgan: {batchsize: 512}}}"))
    code, _, err = cli("run", over, "--out", tmp_path / "out")
    assert code == 2 and "gan_overrides.dcgan" in err and "batchsize" in err
    assert not (tmp_path / "out").exists()


def test_paper_studies_apply_per_gan_settings():
    from tf_vesselgan.config import load_config
    from tf_vesselgan.config import study_gan_config as _with_arch

    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "experiments" / "paper" / "anonymization.yaml")
    got = {a: (g.batch_size, g.epochs, g.arch, g.latent_dim, g.critic_layout, g.critic_reals)
           for a in cfg.study.gans for g in [_with_arch(cfg, a).gan]}
    assert got == {"dcgan": (512, 178, "dcgan", 100, "official", "reuse"),
                   "wgan-gp": (300, 180, "wgan-gp", 128, "official", "reuse"),
                   "wgan-gp-sn": (300, 180, "wgan-gp-sn", 128, "official", "reuse")}
    assert cfg.gan.width == 1.0 and cfg.unet.width == 1.0
    root = Path(__file__).resolve().parents[2] / "experiments" / "paper"
    singles = {f: load_config(root / f"{f}.yaml").gan for f in ("dcgan", "wgan_gp", "wgan_gp_sn")}
    assert {f: (g.latent_dim, g.critic_layout) for f, g in singles.items()} == {
        "dcgan": (100, "official"), "wgan_gp": (128, "official"), "wgan_gp_sn": (128, "official")}
    assert singles["wgan_gp"].critic_reals == singles["wgan_gp_sn"].critic_reals == "reuse"


@pytest.mark.slow
def test_transfer_study_has_both_arms_for_every_usable_n(tmp_path, cli):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(TINY.replace("gans: [wgan-gp-sn, dcgan], phantom_cases: 4",
                                "kind: transfer, gans: [wgan-gp-sn], phantom_cases: 4, transfer_phantom_cases: 5, "
                                "transfer_n: [1, 3, 9]").replace("kind: anonymization, ", ""))
    out = tmp_path / "out"
    code, stdout, err = cli("run", cfg, "--out", out)
    assert code == 0, err
    rows = list(csv.DictReader(open(out / "transfer.csv")))
    # 5 cases: 3 training patients, so n = 9 is left out
    assert sorted((int(r["n"]), r["arm"]) for r in rows) == [(1, "pretrained"), (1, "scratch"), (3, "pretrained"),
                                                            (3, "scratch")]
    status = json.loads((out / "t_unet_pretrained_n1" / "run.json").read_text())
    assert status["init"].endswith("unet_synthetic_wgan-gp-sn")
    assert json.loads((out / "t_unet_scratch_n1" / "run.json").read_text())["init"] is None
    report = (out / "report.md").read_text()
    for r in rows:
        assert f"| {r['n']} | {r['arm']} | {float(r['test_dice']):.3f} |" in report
    assert (out / "fig3_transfer.png").stat().st_size > 1000 and (out / "fig4_error_maps.png").stat().st_size > 1000
