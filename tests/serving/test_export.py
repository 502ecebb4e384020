"""SavedModel export: signatures checked in a fresh process, outputs equal the Keras models'."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.conftest import fake_gan_run
from tf_vesselgan.serving.export import export_model, read_models_config, sample_noise

FRESH = r"""
import json, sys
import numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
out = {}
for key, fn in m.signatures.items():
    _, kw = fn.structured_input_signature
    out[key] = {"inputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in kw.items()},
                "outputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in fn.structured_outputs.items()}}
x = np.load(sys.argv[2])
if "sample" in m.signatures:
    r = m.signatures["serving_default"](noise=tf.constant(x["noise"]))
    s = m.signatures["sample"](count=tf.constant(5, tf.int32), seed=tf.constant(11, tf.int64))
    np.savez(sys.argv[3], image=r["image"].numpy(), label=r["label"].numpy(), s_image=s["image"].numpy())
else:
    r = m.signatures["serving_default"](image=tf.constant(x["image"]))
    np.savez(sys.argv[3], probability=r["probability"].numpy(), label=r["label"].numpy())
print(json.dumps(out))
"""


def fresh_process(model_dir, inputs_npz, out_npz):
    res = subprocess.run([sys.executable, "-c", FRESH, str(model_dir), str(inputs_npz), str(out_npz)],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_generator_signatures_and_outputs_in_a_fresh_process(exported, tmp_path):
    noise = np.random.default_rng(0).normal(size=(3, 100)).astype(np.float32)
    np.savez(tmp_path / "in.npz", noise=noise)
    sigs = fresh_process(exported["root"] / "models" / "generator" / "1", tmp_path / "in.npz", tmp_path / "out.npz")
    assert sigs["serving_default"] == {"inputs": {"noise": ["float32", [None, 100]]},
                                       "outputs": {"image": ["float32", [None, 96, 96, 1]],
                                                   "label": ["uint8", [None, 96, 96, 1]]}}
    assert sigs["sample"]["inputs"] == {"count": ["int32", []], "seed": ["int64", []]}
    assert sigs["sample"]["outputs"] == sigs["serving_default"]["outputs"]
    got = np.load(tmp_path / "out.npz")
    pair = exported["generator"](noise, training=False).numpy()
    np.testing.assert_allclose(got["image"][..., 0], pair[..., 0], atol=1e-5)
    np.testing.assert_array_equal(got["label"][..., 0], (pair[..., 1] > 0.8).astype(np.uint8))
    # `sample` draws `vesselgan sample`'s noise: blocks of 256 with seed (seed, block)
    z = tf.random.stateless_normal([256, 100], seed=[11, 0])[:5]
    np.testing.assert_allclose(got["s_image"][..., 0], exported["generator"](z, training=False).numpy()[..., 0],
                               atol=1e-5)


def test_unet_signature_bakes_in_normalisation(exported, tmp_path):
    """The served U-net segments slices exactly as `vesselgan segment` does (same tiles,
    normalisation and threshold), checked in a fresh process."""
    from tf_vesselgan.evaluation.inference import segment_volume

    rng = np.random.default_rng(1)
    image = (100 + 20 * rng.normal(size=(2, 40, 36, 1))).astype(np.float32)  # not a multiple of 16
    np.savez(tmp_path / "in.npz", image=image)
    sigs = fresh_process(exported["root"] / "models" / "unet" / "1", tmp_path / "in.npz", tmp_path / "out.npz")
    assert sigs["serving_default"] == {"inputs": {"image": ["float32", [None, None, None, 1]]},
                                       "outputs": {"probability": ["float32", [None, None, None, 1]],
                                                   "label": ["uint8", [None, None, None, 1]]}}
    got = np.load(tmp_path / "out.npz")
    assert got["probability"].shape == image.shape
    status = {"patch_size": 32, "normalization": "global", "mean": 100.0, "std": 20.0}
    volume = image[..., 0].transpose(1, 2, 0)
    want = segment_volume(exported["unet"], volume, np.ones(volume.shape, bool), status, stride=48)
    want = want.transpose(2, 0, 1)[..., None]
    np.testing.assert_allclose(got["probability"], want, atol=1e-5)
    np.testing.assert_array_equal(got["label"], (want > 0.5).astype(np.uint8))


def test_versions_increase_and_only_the_generator_is_inside(tmp_path):
    fake_gan_run(tmp_path / "gan")
    first = export_model(tmp_path / "gan", tmp_path / "m" / "g")
    second = export_model(tmp_path / "gan", tmp_path / "m" / "g")
    assert (first.name, second.name) == ("1", "2")
    # no partial folder left; provenance.json describes the latest version
    assert sorted(p.name for p in (tmp_path / "m" / "g").iterdir()) == ["1", "2", "provenance.json"]
    prov = json.loads((tmp_path / "m" / "g" / "provenance.json").read_text())
    assert prov["version"] == 2 and prov["label_threshold"] == 0.8 and prov["label_threshold_rule"] == "fixed"
    names = [n for n, _ in tf.train.list_variables(str(second / "variables" / "variables"))]
    assert not any("critic" in n or "discriminator" in n for n in names)
    from tensorflow_serving.apis import prediction_log_pb2

    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(str(second / "assets.extra" / "tf_serving_warmup_requests"))]
    assert [l.predict_log.request.model_spec.signature_name for l in logs] == ["serving_default", "sample"]


def test_provenance_names_the_generator_and_critic_layout(tmp_path):
    """An export of a resize-upsampling generator with a label head of its own, trained against
    the official critic, says so, and the exported generator is the run's (same samples for
    the same noise)."""
    gen = fake_gan_run(tmp_path / "gan", upsample="resize", critic_layout="official", latent_dim=128,
                       label_head="image")
    version = export_model(tmp_path / "gan", tmp_path / "m" / "g")
    prov = json.loads((version / "assets.extra" / "provenance.json").read_text())
    assert (prov["upsample"], prov["critic_layout"], prov["latent_dim"]) == ("resize", "official", 128)
    assert prov["label_head"] == "image"
    z = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)
    served = tf.saved_model.load(str(version)).signatures["serving_default"](noise=tf.constant(z))
    np.testing.assert_allclose(served["image"].numpy(), gen(z, training=False)[..., :1].numpy(), atol=1e-5)


def test_export_cli_errors_and_models_config(tmp_path, cli):
    fake_gan_run(tmp_path / "gan")
    cfg = tmp_path / "serving" / "models.config"
    assert cli("export", "--run", tmp_path / "gan", "--out", tmp_path / "m" / "gen", "--models-config", cfg)[0] == 0
    assert read_models_config(cfg) == {"gen": str((tmp_path / "m" / "gen").resolve())}
    code, _, err = cli("export", "--run", tmp_path / "gan", "--out", tmp_path / "m" / "gen", "--version", 1,
                       "--models-config", "")
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "notarun").mkdir()
    code, _, err = cli("export", "--run", tmp_path / "notarun", "--out", tmp_path / "m" / "x", "--models-config", "")
    assert code == 2 and not (tmp_path / "m" / "x").exists()


def test_sample_noise_matches_blocks_across_the_boundary():
    z = sample_noise(tf.constant(300), tf.constant(5, tf.int64), 7).numpy()
    want = np.concatenate([tf.random.stateless_normal([256, 7], seed=[5, 0]).numpy(),
                           tf.random.stateless_normal([256, 7], seed=[5, 1]).numpy()[:44]])
    np.testing.assert_array_equal(z, want)


def test_sample_from_an_export_equals_sampling_its_run(exported, cli, tmp_path):
    root = exported["root"]
    code, _, err = cli("sample", "--run", root / "gan", "--n", 300, "--seed", 4, "--out", tmp_path / "run")
    assert code == 0, err
    code, _, err = cli("sample", "--model", root / "models" / "generator" / "1", "--n", 300, "--seed", 4,
                       "--out", tmp_path / "export")
    assert code == 0, err
    with np.load(tmp_path / "run" / "samples.npz") as a, np.load(tmp_path / "export" / "samples.npz") as b:
        np.testing.assert_allclose(a["image"], b["image"], atol=1e-5)
        assert (a["label"] != b["label"]).mean() < 1e-4  # ties at the threshold may round either way
    info = json.loads((tmp_path / "export" / "samples.json").read_text())
    assert info["threshold"] == pytest.approx(0.8)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    for bad, what in ((["--model", root / "models" / "generator"], "saved_model.pb"),
                      (["--model", broken], "cannot load the SavedModel"),
                      (["--model", root / "models" / "unet" / "1"], "not an exported generator"),
                      (["--run", root / "gan", "--threshold", "nan"], "[-1, 1]"),
                      (["--run", root / "gan", "--threshold", "5"], "[-1, 1]")):
        code, _, err = cli("sample", *bad, "--n", 4, "--out", tmp_path / "bad")
        assert code == 2 and what in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()
    # --out is a folder: a file name there is refused, not made into a folder of that name
    for command in (["sample", "--model", root / "models" / "generator" / "1"],
                    ["client", "sample", "--url", "http://127.0.0.1:9"]):
        code, _, err = cli(*command, "--n", 4, "--out", tmp_path / "pairs.NPZ", "--format", "nifti")
        assert code == 2 and "looks like a file name" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "pairs.NPZ").exists()
