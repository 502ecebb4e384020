"""`vesselgan train-gan` / `sample` end to end on tiny patches: run folder, TensorBoard, resume."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import load_benchmark, tiny_gan_data

GAN_YAML = """seed: 2
data:
  patch_size: 96
  n_vessel: 8
  n_random: 8
  split: {train: 0.5, val: 0.25, test: 0.25}
gan:
  width: 0.03
  batch_size: 4
  n_critic: 2
  epochs: 2
  steps_per_epoch: 2
  image_grid: 4
"""


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    return tiny_gan_data(tmp_path_factory.mktemp("gan"), "gan.yaml", GAN_YAML)


def tb_tags(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    ea.Reload()
    return ea.Tags()["tensors"], ea


def test_train_resume_and_sample(patches, cli, tmp_path):
    run = tmp_path / "run"
    cfg = patches / "gan.yaml"
    code, out, err = cli("train-gan", "--arch", "wgan-gp-sn", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 0, err
    assert "2 epochs" in out
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == ["ckpt-1.index", "ckpt-2.index"]
    for name in ("config.yaml", "versions.json", "history.csv", "generator.keras", "run.json"):
        assert (run / name).exists(), name
    tags, ea = tb_tags(run / "tensorboard")
    for tag in ("loss/d_loss", "loss/g_loss", "loss/gradient_penalty", "loss/wasserstein", "critic/d_real",
                "critic/d_fake", "optimizer/d_learning_rate", "time/step_seconds", "samples/fixed_noise_pairs"):
        assert tag in tags, tag
    assert [e.step for e in ea.Tensors("loss/d_loss")] == [1, 2]

    # the same run folder again without --resume is refused
    code, _, err = cli("train-gan", "--arch", "wgan-gp-sn", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 2 and "--resume" in err

    code, out, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--resume", "--epochs", 3)
    assert code == 0, err
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert json.loads((run / "run.json").read_text())["epochs_done"] == 3
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith("g_optimizer/") and "iter" in k]
    assert keys and int(reader.get_tensor(keys[0])) == 6  # optimizer state continued: 3 epochs × 2 steps

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert cli("sample", "--run", run, "--n", 300, "--out", a, "--seed", 5)[0] == 0
    assert cli("sample", "--run", run, "--n", 300, "--out", b, "--seed", 5)[0] == 0
    assert cli("sample", "--run", run, "--n", 300, "--out", c, "--seed", 6)[0] == 0
    za, zb, zc = (np.load(p / "samples.npz") for p in (a, b, c))
    assert sorted(za.files) == ["image", "label"]
    assert za["image"].shape == (300, 96, 96) and za["image"].dtype == np.float32
    assert za["label"].dtype == np.uint8 and set(np.unique(za["label"])) <= {0, 1}
    assert za["image"].min() >= -1 and za["image"].max() <= 1
    assert np.array_equal(za["image"], zb["image"]) and np.array_equal(za["label"], zb["label"])
    assert not np.array_equal(za["image"], zc["image"])
    meta = (a / "samples.json").read_text()
    assert "c0" not in meta and "c1" not in meta and "data" not in meta

    code, _, err = cli("sample", "--run", run, "--n", 0, "--out", tmp_path / "d")
    assert code == 2 and "positive" in err and not (tmp_path / "d").exists()


def test_resize_upsampling_and_a_label_head_train_and_sample_alike_from_file_and_checkpoint(patches, cli, tmp_path):
    cfg = tmp_path / "resize.yaml"
    cfg.write_text(GAN_YAML.replace("gan:\n", "gan:\n  upsample: resize\n  label_head: image\n  ema_decay: 0.9\n"
                                               "  label_threshold: auto\n"))
    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--arch", "dcgan", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 0, err
    saved = tmp_path / "saved"
    assert cli("sample", "--run", run, "--n", 64, "--out", saved, "--seed", 5)[0] == 0
    (run / "generator.keras").unlink()  # now rebuilt from the config and restored from the checkpoint
    rebuilt = tmp_path / "rebuilt"
    code, _, err = cli("sample", "--run", run, "--n", 64, "--out", rebuilt, "--seed", 5)
    assert code == 0, err
    a, b = np.load(saved / "samples.npz"), np.load(rebuilt / "samples.npz")
    assert np.allclose(a["image"], b["image"], atol=1e-4) and a["image"].std(axis=0).mean() > 0.01
    assert (a["label"] != b["label"]).mean() < 1e-3 and a["label"].any()


def test_a_label_teacher_is_trained_once_charged_to_the_budget_and_kept_for_resume(patches, cli, tmp_path):
    cfg = tmp_path / "teacher.yaml"
    cfg.write_text(GAN_YAML.replace("gan:\n", "gan:\n  label_coding: signed\n  label_teacher_steps: 3\n"
                                               "  label_teacher_width: 0.05\n"))
    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--arch", "dcgan", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 0, err
    status = json.loads((run / "run.json").read_text())
    spent = status["label_teacher_seconds"]["machine_seconds"]
    assert spent > 0 and status["clock"]["0"]["machine_seconds"] == spent
    assert status["clock"]["1"]["machine_seconds"] > spent  # the epochs' clock starts after the teacher's
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert all(float(r["label_teacher"]) > 0 for r in rows)
    assert not list(run.glob(".*partial*"))
    made = (run / "teacher.keras").stat().st_mtime_ns
    code, _, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--resume", "--epochs", 3)
    assert code == 0, err
    assert (run / "teacher.keras").stat().st_mtime_ns == made  # not trained again
    assert json.loads((run / "run.json").read_text())["label_teacher_seconds"]["machine_seconds"] == spent


def test_a_patch_size_the_generator_cannot_draw_is_refused_before_anything_is_written(cli, tmp_path):
    small = tiny_gan_data(tmp_path, "gan.yaml", GAN_YAML.replace("patch_size: 96", "patch_size: 64"))
    code, _, err = cli("train-gan", "--patches", small / "patches", "--out", tmp_path / "run", "--config",
                       small / "gan.yaml")
    assert code == 2 and "patch_size must be 32, 96 or 160" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("teacher", [0, 2])
def test_too_few_training_patches_for_one_step_are_refused_before_anything_is_written(patches, cli, tmp_path,
                                                                                     teacher):
    cfg = tmp_path / "big_batch.yaml"
    text = GAN_YAML.replace("  steps_per_epoch: 2\n", "").replace("batch_size: 4", "batch_size: 64")
    cfg.write_text(text + (f"  label_teacher_steps: {teacher}\n" if teacher else ""))
    code, _, err = cli("train-gan", "--arch", "wgan-gp", "--patches", patches / "patches", "--out", tmp_path / "run",
                       "--config", cfg)
    assert code == 2 and "fewer than one step needs (128)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_sample_formats(patches, cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train-gan", "--arch", "dcgan", "--patches", patches / "patches", "--out", run,
               "--config", patches / "gan.yaml", "--epochs", 1)[0] == 0
    assert cli("sample", "--run", run, "--n", 3, "--out", tmp_path / "n", "--format", "nifti")[0] == 0
    import nibabel as nib

    files = sorted(p.name for p in (tmp_path / "n").glob("*.nii.gz"))
    assert len(files) == 6
    img = nib.load(str(tmp_path / "n" / "sample_000000_label.nii.gz"))
    assert np.array_equal(img.affine, np.eye(4)) and img.header["descrip"].item() == b""
    assert cli("sample", "--run", run, "--n", 20, "--out", tmp_path / "p", "--format", "png")[0] == 0
    import matplotlib.image

    pngs = sorted((tmp_path / "p").glob("*.png"))
    assert pngs
    grid = matplotlib.image.imread(str(pngs[0]))
    assert grid.shape[0] > 96 and grid.shape[1] > 96 and grid.std() > 0.01  # decodes, is a picture, not blank


def test_resume_refuses_a_different_model_or_data(patches, cli, tmp_path):
    """A resume may change how long a run trains, never what it trains: other widths,
    architectures, batch sizes, seeds, configs or patches are one line, exit 2, nothing
    changed in the run folder."""
    from tf_vesselgan.config import load_config
    from tf_vesselgan.data.build import build_patches

    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--arch", "dcgan", "--patches", patches / "patches", "--out", run,
                       "--config", patches / "gan.yaml", "--epochs", 1)
    assert code == 0, err
    other = tmp_path / "other.yaml"
    other.write_text(GAN_YAML.replace("n_vessel: 8", "n_vessel: 6"))
    build_patches(patches / "data", tmp_path / "p2", load_config(other), progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for args, what in (((("--width", 0.05)), "gan.width"), ((("--arch", "wgan-gp")), "gan.arch"),
                       ((("--batch-size", 2)), "gan.batch_size"), ((("--seed", 9)), "seed"),
                       ((("--config", other)), "--config"), ((("--patches", tmp_path / "p2")), "other patches")):
        flags = [*args] if args[0] == "--patches" else ["--patches", patches / "patches", *args]
        code, _, err = cli("train-gan", *flags, "--out", run, "--resume", "--epochs", 2)
        assert code == 2 and what in err and len(err.strip().splitlines()) == 1, (args, err)
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    code, _, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--resume", "--epochs", 2)
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["epochs_done"] == 2



@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_training_resumes(patches, tmp_path, sig):
    run = tmp_path / "run"
    cfg = tmp_path / "long.yaml"
    cfg.write_text(GAN_YAML.replace("epochs: 2", "epochs: 6").replace("steps_per_epoch: 2", "steps_per_epoch: 4"))
    env = dict(os.environ, VESSELGAN_NO_PROGRESS="1")
    cmd = [sys.executable, "-m", "tf_vesselgan", "train-gan", "--arch", "wgan-gp", "--patches",
           str(patches / "patches"), "--out", str(run), "--config", str(cfg)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (run / "checkpoints" / "ckpt-2.index").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err.decode()[-2000:]
        assert b"interrupted by SIGTERM" in out and b"Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    done = json.loads((run / "run.json").read_text()).get("epochs_done", 0)
    assert done >= 2 or sig == signal.SIGKILL
    res = subprocess.run(cmd[:-2] + ["--resume"], env=env, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [r["epoch"] for r in rows] == [str(e) for e in range(6)]  # the interrupted epoch logged once
    assert json.loads((run / "run.json").read_text())["epochs_done"] == 6


@pytest.mark.slow
def test_train_gan_with_two_workers_from_tf_config(patches, cli, tmp_path):
    """`vesselgan train-gan` in 2 worker processes (TF_CONFIG, 127.0.0.1): the chief owns
    the run folder, the other worker leaves nothing behind, and the trained generator
    equals a single-process run's."""
    import keras

    from tests.conftest import free_ports

    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tf_vesselgan", "train-gan", "--arch", "wgan-gp", "--patches",
           str(patches / "patches"), "--out", str(run), "--config", str(patches / "gan.yaml")]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, VESSELGAN_NO_PROGRESS="1", TF_CONFIG=json.dumps(tf_config))
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no worker scratch folder left
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == ["ckpt-1.index", "ckpt-2.index"]
    assert len(list(csv.DictReader(open(run / "history.csv")))) == 2
    single = tmp_path.parent / f"{tmp_path.name}-single"
    assert cli("train-gan", "--arch", "wgan-gp", "--patches", patches / "patches", "--out", single,
               "--config", patches / "gan.yaml")[0] == 0
    a = keras.models.load_model(str(run / "generator.keras"), compile=False).get_weights()
    b = keras.models.load_model(str(single / "generator.keras"), compile=False).get_weights()
    # 4 generator steps of Adam at lr 1e-4 (β1 0, β2 0.9): step t moves a weight by at most
    # lr·√((1 − β2^t)/(1 − β2)) whatever the gradient's size (1, 1.38, 1.63, 1.85 × lr), so a
    # weight whose gradient is ~0 can flip sign under a different summation order: at most
    # 2 · 5.86 · lr apart. Almost all weights agree to within lr.
    close = total = 0
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=0, atol=1.2e-3)
        close += int(np.sum(np.abs(x - y) <= 1e-4))
        total += x.size
    assert close / total > 0.95


SAMPLING_YAML = GAN_YAML.replace("  image_grid: 4\n", """  image_grid: 4
  ema_decay: 0.9
  label_threshold: auto
  diff_augment: translation,cutout
  snapshot_every: 1
  quality_samples: 16
unet:
  width: 0.05
  normalization: minmax
  epochs: 1
  steps_per_epoch: 2
  batch_size: 4
""")


def test_sampling_generator_snapshots_and_best_by_fid(patches, cli, tmp_path):
    """EMA + auto threshold + DiffAugment + FID-scored snapshots: generator.keras is the
    best snapshot, run.json holds the calibrated threshold, `sample` uses it."""
    import keras

    cfg = tmp_path / "s.yaml"
    cfg.write_text(SAMPLING_YAML)
    code, _, err = cli("train-unet", "--train", "real", "--patches", patches / "patches", "--out", tmp_path / "unet",
                       "--config", cfg)
    assert code == 0, err
    cfg.write_text(SAMPLING_YAML.replace("  quality_samples: 16\n",
                                         f"  quality_samples: 16\n  quality_features: unet:{tmp_path / 'unet'}\n"))
    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--arch", "wgan-gp", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 0, err
    snaps = list(csv.DictReader(open(run / "snapshots.csv")))
    assert [int(r["epoch"]) for r in snaps] == [1, 2]
    assert all(float(r["fid"]) > 0 and float(r["machine_seconds"]) > 0 for r in snaps)
    best = min(snaps, key=lambda r: float(r["fid"]))
    status = json.loads((run / "run.json").read_text())
    assert status["sampling"]["best_snapshot"] == best["file"]
    assert status["label_threshold"] == pytest.approx(float(best["label_threshold"]))
    a = keras.models.load_model(str(run / "generator.keras"), compile=False).get_weights()
    b = keras.models.load_model(str(run / best["file"]), compile=False).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    hist = list(csv.DictReader(open(run / "history.csv")))
    assert {"machine_seconds", "collapse_std", "sample_similarity", "fid", "label_threshold"} <= set(hist[0])

    code, _, err = cli("sample", "--run", run, "--n", 512, "--out", tmp_path / "s", "--seed", 3)
    assert code == 0, err
    info = json.loads((tmp_path / "s" / "samples.json").read_text())
    assert info["threshold"] == pytest.approx(status["label_threshold"])
    with np.load(tmp_path / "s" / "samples.npz") as z:
        frac = z["label"].mean()
    assert frac == pytest.approx(status["real_label_fraction"], rel=0.5)


def test_gan_train_scored_snapshots_keep_the_best(patches, cli, tmp_path, monkeypatch):
    """quality_score gan_train needs no U-net run: each snapshot is scored by a small U-net
    trained on its samples; generator.keras is the highest-scoring snapshot."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(SAMPLING_YAML.replace("  quality_samples: 16\n", "  quality_samples: 16\n  quality_score: gan_train\n"
                                         "  quality_unet_steps: 2\n  quality_unet_width: 0.05\n"))
    run = tmp_path / "run"
    code, _, err = cli("train-gan", "--arch", "dcgan", "--patches", patches / "patches", "--out", run, "--config", cfg)
    assert code == 0, err
    snaps = list(csv.DictReader(open(run / "snapshots.csv")))
    assert len(snaps) == 2 and all(0.0 <= float(r["gan_train"]) <= 1.0 and r["fid"] == "" for r in snaps)
    best = max(snaps, key=lambda r: float(r["gan_train"]))
    sampling = json.loads((run / "run.json").read_text())["sampling"]
    assert sampling["best_snapshot"] == best["file"] and sampling["quality_score"] == "gan_train"
    assert sampling["best_gan_train"] == pytest.approx(float(best["gan_train"]))
    assert "gan_train" in next(csv.DictReader(open(run / "history.csv")))

    # benchmarks/score_snapshots.py scores them again after the fact by the same procedure
    out = tmp_path / "scores.csv"
    argv = ["score_snapshots.py", "--run", str(run), "--patches", str(patches / "patches"), "--config", str(cfg),
            "--csv", str(out)]
    monkeypatch.setattr(sys, "argv", argv + ["--rescore", "--png", str(tmp_path / "scores.png")])
    assert load_benchmark("score_snapshots").main() == 0
    again = list(csv.DictReader(open(out)))
    assert [int(r["epoch"]) for r in again] == [int(r["epoch"]) for r in snaps]
    assert [float(r["gan_train"]) for r in again] == pytest.approx([float(r["gan_train"]) for r in snaps], abs=1e-4)
    assert {r["source"] for r in again} == {"rescored"} and (tmp_path / "scores.png").stat().st_size > 1000
    # --compare overlays a curve written with --csv; anything else is one line and exit 2
    (tmp_path / "other.csv").write_text(out.read_text())
    (tmp_path / "bad.csv").write_text("epoch,minutes\n1,2\n")
    for spec, code in ((f"other={tmp_path / 'other.csv'}", 0), (str(tmp_path / "other.csv"), 2),
                       (f"bad={tmp_path / 'bad.csv'}", 2), (f"gone={tmp_path / 'gone.csv'}", 2)):
        monkeypatch.setattr(sys, "argv", argv + ["--png", str(tmp_path / "both.png"), "--compare", spec])
        assert load_benchmark("score_snapshots").main() == code, spec
    monkeypatch.setattr(sys, "argv", argv + ["--png", str(tmp_path / "alone.png")])  # same call, no overlay
    assert load_benchmark("score_snapshots").main() == 0
    assert (tmp_path / "both.png").stat().st_size > (tmp_path / "alone.png").stat().st_size + 500
    # each snapshot at the threshold it was saved with; --every counts back from the last;
    # without --rescore a snapshot the run scored keeps its score
    import tf_vesselgan.training.gan_trainer as gan_trainer

    monkeypatch.setattr(gan_trainer, "snapshot_scorer", lambda *a: lambda gen, thr: thr)
    monkeypatch.setattr(sys, "argv", argv + ["--every", "2", "--rescore"])
    assert load_benchmark("score_snapshots").main() == 0
    (last,) = list(csv.DictReader(open(out)))
    assert int(last["epoch"]) == int(snaps[-1]["epoch"])
    assert float(last["gan_train"]) == pytest.approx(float(snaps[-1]["label_threshold"]))
    monkeypatch.setattr(sys, "argv", argv + ["--every", "2"])
    assert load_benchmark("score_snapshots").main() == 0
    (last,) = list(csv.DictReader(open(out)))
    assert last["source"] == "run" and float(last["gan_train"]) == pytest.approx(float(snaps[-1]["gan_train"]))
    monkeypatch.setattr(sys, "argv", argv[:-2] + ["--epochs", "x"])
    assert load_benchmark("score_snapshots").main() == 2
    (run / snaps[0]["file"]).unlink()  # a snapshot file gone: one line, exit 2, nothing scored
    monkeypatch.setattr(sys, "argv", argv + ["--rescore"])
    assert load_benchmark("score_snapshots").main() == 2


def test_a_resume_that_records_more_keeps_history_columns_aligned(patches, tmp_path):
    """`vesselgan run` resumes a GAN whose config gained recording keys (here: snapshots
    scored by gan_train); the new columns join history.csv with NA in the earlier rows and
    the old values stay under their own header."""
    import yaml

    from tf_vesselgan.config import from_dict
    from tf_vesselgan.training.gan_trainer import train_gan

    mapping = yaml.safe_load(GAN_YAML)
    mapping["gan"].update(arch="dcgan", epochs=1)
    run = tmp_path / "run"
    train_gan(patches / "patches", run, from_dict(mapping), verbose=0)
    first = list(csv.DictReader(open(run / "history.csv")))
    mapping["gan"].update(epochs=2, snapshot_every=1, quality_samples=16, quality_score="gan_train",
                          quality_unet_steps=2, quality_unet_width=0.05)
    train_gan(patches / "patches", run, from_dict(mapping), resume=True, verbose=0)
    with open(run / "history.csv") as f:
        lines = list(csv.reader(f))
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    rows = [dict(zip(lines[0], line)) for line in lines[1:]]
    assert "gan_train" in lines[0] and "gan_train" not in first[0]
    assert rows[0]["gan_train"] == "NA" and 0.0 <= float(rows[1]["gan_train"]) <= 1.0
    assert all(rows[0][k] == v for k, v in first[0].items())


def test_monitor_every_checks_every_nth_epoch_and_every_snapshot(patches, tmp_path):
    """gan.monitor_every 3 with snapshot_every 2: the sampling generator is checked at
    epochs 2 (a snapshot), 3 (the third) and 4 (a snapshot), not at 1; unchecked epochs log
    NA and draw no image grid, the snapshots and the final generator are as usual."""
    import yaml

    from tf_vesselgan.config import from_dict
    from tf_vesselgan.training.gan_trainer import train_gan

    mapping = yaml.safe_load(GAN_YAML)
    mapping["gan"].update(arch="dcgan", epochs=4, steps_per_epoch=1, monitor_every=3, snapshot_every=2)
    run = tmp_path / "run"
    train_gan(patches / "patches", run, from_dict(mapping), verbose=0)
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [r["collapse_std"] == "NA" for r in rows] == [True, False, False, False]
    assert all(float(r["label_threshold"]) == float(r["label_threshold"]) for r in rows[1:])  # not NaN
    assert [int(r["epoch"]) for r in csv.DictReader(open(run / "snapshots.csv"))] == [2, 4]
    _, ea = tb_tags(run / "tensorboard")
    assert [e.step for e in ea.Tensors("samples/fixed_noise_pairs")] == [2, 3, 4]
    assert (run / "generator.keras").exists()


def test_budget_stops_training_and_holds_on_resume(patches, cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("train-gan", "--arch", "dcgan", "--patches", patches / "patches", "--out", run,
                         "--config", patches / "gan.yaml", "--epochs", 50, "--max-seconds", 1)
    assert code == 0, err
    status = json.loads((run / "run.json").read_text())
    assert status["epochs_done"] == 1 and status["budget_exhausted"] is True
    assert status["clock"]["1"]["machine_seconds"] == pytest.approx(status["machine_seconds"])
    code, out, err = cli("train-gan", "--patches", patches / "patches", "--out", run, "--resume")
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["epochs_done"] == 1
    assert len(list(csv.DictReader(open(run / "history.csv")))) == 1


def test_resume_holds_a_budget_its_first_epoch_exhausted_however_fast_that_epoch_was():
    """The budget stop's rule (the next epoch costs what the last did, the first its whole
    clock) and the resume check agree; the flaky case was a first epoch under half the budget."""
    from tf_vesselgan.training.gan_trainer import _clock_at

    one = {"clock": {"1": {"machine_seconds": 0.6, "wall_seconds": 0.7}}}
    assert _clock_at(one, 1, 1.0) == ({"machine_seconds": 0.6, "wall_seconds": 0.7}, False)
    assert _clock_at(one, 1, 1.3)[1] is True
    two = {"clock": {"1": {"machine_seconds": 0.6, "wall_seconds": 0.7},
                     "2": {"machine_seconds": 0.8, "wall_seconds": 0.9}}}
    assert _clock_at(two, 2, 1.0)[1] is False and _clock_at(two, 2, 1.01)[1] is True
    assert _clock_at({}, 0, 1.0) == ({"machine_seconds": 0.0, "wall_seconds": 0.0}, True)
    assert _clock_at(one, 1, None)[1] is True


def test_learning_rate_decay_factor_is_one_until_its_start_then_linear_to_zero():
    from tf_vesselgan.training.budget import budget_fraction, decayed_rate_factor

    assert [decayed_rate_factor(s, 0.5) for s in (0.0, 0.5, 0.75, 1.0)] == [1.0, 1.0, 0.5, 0.0]
    assert decayed_rate_factor(0.9, 0.0) == pytest.approx(0.1)
    assert budget_fraction(3, 10, 50.0, 100.0) == 0.5  # the time budget is further spent
    assert budget_fraction(3, 10, 50.0, None) == 0.3
    assert budget_fraction(3, 10, 500.0, 100.0) == 1.0


def test_learning_rate_decay_sets_both_rates_per_epoch_from_the_configs_rates_across_a_resume(patches, tmp_path):
    """gan.lr_decay_from 0.5 over 4 epochs: factors 1, 1, 1, 0.5; resumed to 6 epochs, the
    factors follow the new budget (2/3, 1/3) from the config's rates, not from the decayed
    rate the checkpoint restored."""
    import tensorflow as tf
    import yaml

    from tf_vesselgan.config import from_dict
    from tf_vesselgan.training.gan_trainer import train_gan

    mapping = yaml.safe_load(GAN_YAML)
    mapping["gan"].update(arch="dcgan", epochs=4, steps_per_epoch=1, lr_decay_from=0.5, d_learning_rate=0.001)
    run = tmp_path / "run"
    train_gan(patches / "patches", run, from_dict(mapping), verbose=0)
    mapping["gan"]["epochs"] = 6
    train_gan(patches / "patches", run, from_dict(mapping), resume=True, verbose=0)
    rows = list(csv.DictReader(open(run / "history.csv")))
    factors = [float(r["learning_rate_factor"]) for r in rows]
    assert factors == pytest.approx([1.0, 1.0, 1.0, 0.5, 2 / 3, 1 / 3])
    tags, ea = tb_tags(run / "tensorboard")
    assert "optimizer/learning_rate_factor" in tags
    d_rates, g_rates = ([float(tf.make_ndarray(e.tensor_proto)) for e in ea.Tensors(f"optimizer/{k}_learning_rate")]
                        for k in "dg")
    assert d_rates == pytest.approx([0.001 * f for f in factors], rel=1e-5)
    assert g_rates == pytest.approx([3e-4 * f for f in factors], rel=1e-5)  # the paper's DCGAN rate


def test_quality_features_without_a_unet_is_refused_before_anything_is_written(patches, cli, tmp_path):
    cfg = tmp_path / "q.yaml"
    cfg.write_text(SAMPLING_YAML.replace("  quality_samples: 16\n",
                                         f"  quality_samples: 16\n  quality_features: unet:{tmp_path / 'none'}\n"))
    code, _, err = cli("train-gan", "--arch", "wgan-gp", "--patches", patches / "patches", "--out", tmp_path / "run",
                       "--config", cfg)
    assert code == 2 and "no trained U-net" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_label_floor_added_to_a_finished_run_resaves_its_generator_without_training(patches, cli, tmp_path):
    cfg, floored = tmp_path / "plain.yaml", tmp_path / "floor.yaml"
    from tf_vesselgan.config import load_config
    from tf_vesselgan.training.gan_trainer import train_gan

    cfg.write_text(GAN_YAML.replace("gan:\n", "gan:\n  arch: dcgan\n  label_threshold: auto\n"))
    floored.write_text(GAN_YAML.replace("gan:\n", "gan:\n  arch: dcgan\n  label_threshold: auto\n"
                                                   "  label_min_intensity: auto\n"))
    run = tmp_path / "run"
    assert cli("train-gan", "--patches", patches / "patches", "--out", run, "--config", cfg)[0] == 0
    history = (run / "history.csv").read_text()
    train_gan(patches / "patches", run, load_config(floored), resume=True)  # as `vesselgan run` resumes a GAN stage
    status = json.loads((run / "run.json").read_text())
    assert status["epochs_done"] == 2 and (run / "history.csv").read_text() == history  # no training
    floor = status["real_label_floor"]
    assert 0.5 < floor <= 1.0 and status["sampling"]["label_min_intensity"] == floor
    saved, rebuilt = tmp_path / "saved", tmp_path / "rebuilt"
    assert cli("sample", "--run", run, "--n", 64, "--out", saved, "--seed", 5)[0] == 0
    (run / "generator.keras").unlink()  # rebuilt from the checkpoint: the floor comes from the config and run.json
    assert cli("sample", "--run", run, "--n", 64, "--out", rebuilt, "--seed", 5)[0] == 0
    a, b = np.load(saved / "samples.npz"), np.load(rebuilt / "samples.npz")
    assert np.array_equal(a["label"], b["label"]) and a["label"].any()
    image = a["image"]
    lo, hi = image.min(axis=(1, 2), keepdims=True), image.max(axis=(1, 2), keepdims=True)
    assert ((image - lo) / (hi - lo))[a["label"] > 0].min() >= floor - 1e-3  # labels on bright pixels only
