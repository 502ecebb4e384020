"""DP-SGD wired into `vesselgan train-gan`: ε per epoch in history.csv and run.json equal to
dp-accounting's for the updates done, a stop before the target ε would be exceeded, (ε, δ)
in samples.json, the export's provenance and the served metadata; bad DP configs refused
with one line and nothing written."""
import csv
import json

import pytest

from tests.conftest import tiny_gan_data

BASE = """seed: 2
data:
  patch_size: 96
  n_vessel: 8
  n_random: 8
  split: {train: 0.5, val: 0.25, test: 0.25}
gan:
  arch: wgan-gp
  width: 0.03
  batch_size: 4
  n_critic: 2
  epochs: 3
  steps_per_epoch: 2
  image_grid: 4
"""


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    return tiny_gan_data(tmp_path_factory.mktemp("dp"), "base.yaml", BASE)


def dp_yaml(tmp_path, dp: str, extra: str = "") -> str:
    path = tmp_path / "dp.yaml"
    path.write_text(BASE + extra + f"  dp: {dp}\n")
    return str(path)


def test_dp_run_accounts_epsilon_stops_at_the_target_and_states_it(patches, cli, tmp_path):
    from tf_vesselgan.data.build import read_manifest
    from tf_vesselgan.training.dp import epsilon_spent

    n = read_manifest(patches / "patches")["counts"]["train"]
    q = 4 / n
    target = epsilon_spent(q, 1.0, 7, 1e-5)  # 7 updates fit: 3 steps of 2, not a 4th
    cfg = dp_yaml(tmp_path, f"{{noise_multiplier: 1.0, l2_clip: 1.0, delta: 1.0e-5, target_epsilon: {target!r}}}")
    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 0, err
    status = json.loads((run / "run.json").read_text())
    dp = status["dp"]
    assert status["state"] == "complete" and status["epsilon_exhausted"] is True
    assert dp["critic_updates"] == 6 and dp["max_critic_updates"] == 7
    assert dp["epsilon"] == pytest.approx(epsilon_spent(q, 1.0, 6, 1e-5), rel=1e-9) and dp["epsilon"] <= target
    assert dp["sampling_probability"] == pytest.approx(q)
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    eps = [float(r["epsilon"]) for r in rows]
    assert len(rows) == 2 and eps == sorted(eps) and eps[-1] == pytest.approx(dp["epsilon"])
    assert eps[0] == pytest.approx(epsilon_spent(q, 1.0, 4, 1e-5), rel=1e-9)  # epoch 1: 2 steps of 2 updates
    assert {"grad_norm", "clipped_fraction", "batch_size"} <= set(rows[0])

    code, _, err = cli("sample", "--run", run, "--n", "4", "--out", tmp_path / "s")
    assert code == 0, err
    said = json.loads((tmp_path / "s" / "samples.json").read_text())["differential_privacy"]
    assert said["epsilon"] == pytest.approx(dp["epsilon"]) and said["delta"] == 1e-5
    code, _, err = cli("export", "--run", run, "--out", tmp_path / "models" / "generator", "--models-config", "")
    assert code == 0, err
    prov = json.loads((tmp_path / "models" / "generator" / "1" / "assets.extra" / "provenance.json").read_text())
    assert prov["differential_privacy"]["epsilon"] == pytest.approx(dp["epsilon"])
    assert "dp_noise_seed" not in json.dumps(prov)  # the secret stays in the run folder

    from tf_vesselgan.serving.registry import LoadedVersion

    lv = LoadedVersion("generator", 1, tmp_path / "models" / "generator" / "1")
    assert lv.provenance["differential_privacy"]["critic_updates"] == 6

    code, out, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--resume")
    assert code == 0, err  # the target is spent: nothing more is trained
    assert json.loads((run / "run.json").read_text())["dp"]["critic_updates"] == 6


def test_a_run_without_dp_says_so(patches, cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--config", patches / "base.yaml",
                       "--epochs", "1")
    assert code == 0, err
    code, _, err = cli("sample", "--run", run, "--n", "2", "--out", tmp_path / "s")
    assert code == 0, err
    assert json.loads((tmp_path / "s" / "samples.json").read_text())["differential_privacy"] == "not DP"


@pytest.mark.parametrize("dp,extra,message", [
    ("{noise_multiplier: 0}", "", "noise_multiplier': must be > 0"),
    ("{noise_multiplier: -1.0}", "", "noise_multiplier"),
    ("{l2_clip: 0}", "", "l2_clip': must be > 0"),
    ("{l2_clip: -2.0}", "", "l2_clip"),
    ("{delta: 0}", "", "delta': must be in (0, 1)"),
    ("{delta: 1}", "", "delta': must be in (0, 1)"),
    ("{delta: 1.5}", "", "delta"),
    ("{target_epsilon: 0}", "", "target_epsilon': must be > 0"),
    ("{}", "  arch: dcgan\n", "batch norm"),
    ("{}", "  label_threshold: auto\n", "not differentially private"),
    ("{}", "  arch: wgan-gp\n  label_min_intensity: auto\n", "label_min_intensity': 'auto' is a quantile"),
    ("{}", "  strategy: mirrored\n", "one device"),
    ("{}", "  arch: wgan-gp\n  label_teacher_steps: 10\n", "label_teacher_steps': the label teacher"),
    ("{noise_multiplier: 0.5, target_epsilon: 1.0e-4}", "", "allows no training step"),
    ("{noise_multiplier: loud}", "", "a number > 0 or 'auto'"),
    ("{noise_multiplier: auto, target_epsilon: 3.0}", "", "'auto' needs planned_updates"),
    ("{noise_multiplier: auto, planned_updates: 10}", "", "'auto' needs a target_epsilon"),
    ("{noise_multiplier: 1.0, planned_updates: 10}", "", "only with noise_multiplier: auto"),
    ("{noise_multiplier: auto, target_epsilon: 3.0, planned_updates: 0}", "", "planned_updates"),
    ("{noise_multiplier: auto, target_epsilon: 1.0e-9, planned_updates: 100000}", "", "no noise multiplier up to"),
])
def test_bad_dp_configs_are_refused_with_one_line_and_nothing_written(patches, cli, tmp_path, dp, extra, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BASE.replace("  arch: wgan-gp\n", extra or "  arch: wgan-gp\n") + f"  dp: {dp}\n")
    run = tmp_path / "run"
    code, out, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not run.exists()


def test_dcgan_flag_on_a_dp_config_is_refused(patches, cli, tmp_path):
    cfg = dp_yaml(tmp_path, "{noise_multiplier: 1.0}")
    code, _, err = cli("train-gan", "--arch", "dcgan", "--patches", patches / "patches", "--out", tmp_path / "r",
                       "--config", cfg)
    assert code == 2 and "batch norm" in err and not (tmp_path / "r").exists()


def test_auto_noise_spends_the_target_in_the_planned_updates(patches, cli, tmp_path):
    import yaml

    from tf_vesselgan.data.build import read_manifest
    from tf_vesselgan.training.dp import epsilon_spent, noise_for

    q = 4 / read_manifest(patches / "patches")["counts"]["train"]
    cfg = dp_yaml(tmp_path, "{noise_multiplier: auto, delta: 1.0e-5, target_epsilon: 2.0, planned_updates: 8}")
    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--config", cfg, "--epochs", "1")
    assert code == 0, err
    sigma = yaml.safe_load((run / "config.yaml").read_text())["gan"]["dp"]["noise_multiplier"]
    assert sigma == pytest.approx(noise_for(2.0, q, 8, 1e-5), abs=2e-6)
    dp = json.loads((run / "run.json").read_text())["dp"]
    assert dp["noise_multiplier"] == sigma and dp["max_critic_updates"] >= 8
    assert epsilon_spent(q, sigma, 8, 1e-5) <= 2.0 < epsilon_spent(q, sigma, 9, 1e-5) + 0.05
    code, _, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--resume", "--epochs", "2")
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["dp"]["critic_updates"] == 8
    from tf_vesselgan.config import load_config
    from tf_vesselgan.training.dp_run import calibrated_dp_noise
    from tf_vesselgan.training.gan_trainer import check_resumable

    again = calibrated_dp_noise(load_config(cfg), read_manifest(patches / "patches"))
    assert again.gan.dp.noise_multiplier == sigma  # a study resuming with 'auto' calibrates to the same σ
    check_resumable(run, again, read_manifest(patches / "patches"))
