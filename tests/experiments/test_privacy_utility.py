"""The privacy-utility study (`study.dp_epsilons`): its arms and their configs, the refusals,
the table/CSV/figure built from the arms' files, and (slow) a tiny study end to end."""
import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tf_vesselgan.config import ConfigError, from_dict, study_arms

BASE = {"gan": {"width": 0.03, "label_threshold": 0.2, "dp": {"noise_multiplier": 1.3, "l2_clip": 0.5}},
        "study": {"kind": "anonymization", "gans": ["wgan-gp-sn"], "dp_epsilons": [float("inf"), 10.0, 3.0]}}


def test_one_arm_per_gan_and_epsilon_with_the_gan_sections_dp_settings():
    arms = study_arms(from_dict(BASE))
    assert list(arms) == ["wgan-gp-sn", "wgan-gp-sn-dp10", "wgan-gp-sn-dp3"]
    assert arms["wgan-gp-sn"].gan.dp is None  # ε = inf: the GAN without DP
    for name, eps in (("wgan-gp-sn-dp10", 10.0), ("wgan-gp-sn-dp3", 3.0)):
        dp = arms[name].gan.dp
        assert (dp.target_epsilon, dp.noise_multiplier, dp.l2_clip) == (eps, 1.3, 0.5)
        assert arms[name].gan.width == 0.03 and arms[name].unet == arms["wgan-gp-sn"].unet
    plain = from_dict({"study": {"gans": ["dcgan", "wgan-gp"]}})
    assert list(study_arms(plain)) == ["dcgan", "wgan-gp"]


@pytest.mark.parametrize("change,message", [
    ({"study": {"dp_epsilons": [0.0]}}, "every ε must be > 0"),
    ({"study": {"dp_epsilons": [-1.0, 3.0]}}, "every ε must be > 0"),
    ({"study": {"dp_epsilons": [3.0, 3.0]}}, "listed twice"),
    ({"study": {"kind": "transfer"}}, "an anonymization study"),
])
def test_bad_sweeps_are_refused(change, message):
    mapping = {"gan": BASE["gan"], "study": {**BASE["study"], **change["study"]}}
    with pytest.raises(ConfigError, match=message):
        from_dict(mapping)


def test_a_dp_arm_the_gan_cannot_have_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="batch norm"):
        study_arms(from_dict({**BASE, "study": {**BASE["study"], "gans": ["dcgan"]}}))
    auto = {**BASE, "gan": {**BASE["gan"], "label_threshold": "auto", "dp": None}}
    with pytest.raises(ConfigError, match="not differentially private"):
        study_arms(from_dict(auto))


def write_eval(folder, dice):
    folder.mkdir(parents=True)
    with open(folder / "per_patient.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["case", "dice", "hd95_mm"])
        w.writeheader()
        w.writerows({"case": f"p{i}", "dice": d, "hd95_mm": 5.0} for i, d in enumerate(dice))


def test_the_table_csv_and_figure_come_from_the_arms_files(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image
    import matplotlib.pyplot as plt

    from tf_vesselgan.experiments.privacy_utility import privacy_utility_rows, privacy_utility_section
    from tf_vesselgan.training.run_folder import write_status

    cfg = from_dict(BASE)
    write_eval(tmp_path / "eval_real_test", [0.6, 0.8])
    dice = {"wgan-gp-sn": [0.5, 0.7], "wgan-gp-sn-dp10": [0.4, 0.4], "wgan-gp-sn-dp3": [0.1, 0.3]}
    for arm, d in dice.items():
        write_eval(tmp_path / f"eval_synthetic_{arm}_test", d)
        (tmp_path / f"gan_{arm}").mkdir()
        dp = {} if arm == "wgan-gp-sn" else {"dp": {"epsilon": 2.5 if arm.endswith("3") else 9.1, "delta": 1e-5,
                                                     "critic_updates": 500}}
        write_status(tmp_path / f"gan_{arm}", kind="gan", **dp)
        (tmp_path / f"privacy_{arm}").mkdir()
        (tmp_path / f"privacy_{arm}" / "privacy.json").write_text(json.dumps({"membership": {
            "distance to closest sample (black box)": {"auc": 0.51}, "critic score (white box, LOGAN)": {"auc": 0.6}}}))
    rows = privacy_utility_rows(tmp_path, cfg)
    assert [r["target_epsilon"] for r in rows] == [math.inf, 10.0, 3.0]
    assert [r["epsilon"] for r in rows] == [math.inf, 9.1, 2.5]
    assert [round(r["ratio_to_real"], 6) for r in rows] == [round(np.mean(d) / 0.7, 6) for d in dice.values()]
    assert rows[2]["critic_attack_auc"] == 0.6 and rows[2]["distance_attack_auc"] == 0.51
    lines = privacy_utility_section(tmp_path, cfg, plt)
    assert "| wgan-gp-sn | 3 | 2.50 | 500 | – | 0.200 ± 0.141 | 0.29 | 0.510 | 0.600 |" in lines
    assert any(line.startswith("| wgan-gp-sn | ∞ | ∞ | – |") for line in lines)  # the arm without DP
    with open(tmp_path / "privacy_utility.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    pixels = matplotlib.image.imread(str(tmp_path / "privacy_utility.png"))
    assert pixels[..., :3].std() > 0.02


TINY = """name: tiny-dp
seed: 3
data: {n_vessel: 20, n_random: 20}
gan: {arch: wgan-gp-sn, width: 0.03, batch_size: 4, n_critic: 2, epochs: 2, steps_per_epoch: 2, image_grid: 0,
      label_threshold: 0.2, dp: {noise_multiplier: 1.0, l2_clip: 1.0}}
unet: {width: 0.125, normalization: minmax, batch_size: 8, epochs: 1, steps_per_epoch: 2}
study: {kind: anonymization, gans: [wgan-gp-sn], dp_epsilons: [.inf, 30.0], phantom_cases: 4, n_samples: 64,
        fid_samples: 40}
"""


@pytest.mark.slow
def test_a_tiny_privacy_utility_study_end_to_end(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "tf_vesselgan", "run", str(cfg), "--out", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    dp = json.loads((out / "gan_wgan-gp-sn-dp30" / "run.json").read_text())["dp"]
    assert 0 < dp["epsilon"] <= 30.0
    assert "dp" not in json.loads((out / "gan_wgan-gp-sn" / "run.json").read_text())
    samples = json.loads((out / "samples_wgan-gp-sn-dp30" / "samples.json").read_text())
    assert samples["differential_privacy"]["epsilon"] == pytest.approx(dp["epsilon"])
    report = (out / "report.md").read_text()
    assert "## Privacy vs utility" in report and f"{dp['epsilon']:.2f}" in report
    assert (out / "privacy_utility.png").exists()
