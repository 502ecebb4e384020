"""`vesselgan export`: SavedModels in TF Serving's layout `saved_models/<name>/<version>/`.

Generator signatures: `serving_default` {noise} → {image, label}, `sample` {count,
seed} → {image, label}, stateless (the noise of `vesselgan sample`), and `raw` {noise}
→ {image_bytes, label_bytes} (serialized per-sample tensors, compact over REST); the
label threshold baked in. U-net: {image} → {probability, label} with its input normalisation baked in.
Only the exported network's weights go in: no critic, no training data, no case ids.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_vesselgan.errors import UserError
from tf_vesselgan.training.sampling import SAMPLE_BATCH, block_noise

WARMUP_FILE = "tf_serving_warmup_requests"


def sample_noise(count, seed, latent: int):
    """Noise for samples 0..count-1 of seed `seed`, identical to `vesselgan sample`'s."""
    count = tf.cast(count, tf.int32)
    blocks = (count + SAMPLE_BATCH - 1) // SAMPLE_BATCH
    seed = tf.cast(seed, tf.int64)

    def block(k):  # the one noise rule, in the graph
        return block_noise(seed, tf.cast(k, tf.int64), latent)

    z = tf.map_fn(block, tf.range(blocks), fn_output_signature=tf.TensorSpec([SAMPLE_BATCH, latent], tf.float32))
    return tf.reshape(z, [-1, latent])[:count]


class GeneratorModule(tf.Module):
    def __init__(self, generator, threshold: float, max_count: int = 1024):
        super().__init__(name="generator")
        self.generator = generator
        self.latent = int(generator.input_shape[-1])
        self.size = int(generator.output_shape[1])
        self.threshold = float(threshold)
        # saved with the model, so a loaded export can say which threshold it bakes in
        self.label_threshold = tf.Variable(self.threshold, trainable=False, name="label_threshold")
        self.max_count = int(max_count)
        spec = tf.TensorSpec([None, self.latent], tf.float32, name="noise")
        self.serving_default = tf.function(self._from_noise, input_signature=[spec])
        self.raw = tf.function(self._raw, input_signature=[spec])
        self.sample = tf.function(self._sample, input_signature=[tf.TensorSpec([], tf.int32, name="count"),
                                                                 tf.TensorSpec([], tf.int64, name="seed")])

    def _outputs(self, noise):
        pair = self.generator(noise, training=False)
        image = pair[..., :1]
        label = tf.cast(pair[..., 1:] > self.threshold, tf.uint8)
        return {"image": image, "label": label}

    def _from_noise(self, noise):
        return self._outputs(noise)

    def _raw(self, noise):
        """Per-sample serialized TensorProtos: TF Serving's REST API returns DT_STRING
        outputs named *_bytes as {"b64": ...}, ~4 MB per 64 pairs instead of ~10 MB of
        JSON numbers that take longer to print and parse than to generate."""
        out = self._outputs(noise)
        ser = lambda t: tf.map_fn(tf.io.serialize_tensor, t[..., 0], fn_output_signature=tf.string)  # noqa: E731
        return {"image_bytes": ser(out["image"]), "label_bytes": ser(out["label"])}

    def _sample(self, count, seed):
        tf.debugging.assert_non_negative(count, message="count must be >= 0")
        tf.debugging.assert_less_equal(count, self.max_count, message=f"count must be <= {self.max_count}")
        return self._outputs(sample_noise(count, seed, self.latent))


class UNetModule(tf.Module):
    """{image: [B, H, W, 1] slices} → {probability, label}: the slices are segmented exactly
    as `vesselgan segment` does (same tiles, per-tile normalisation, tile weights, flips),
    with every tile predicted (no brain mask); send whole slices, ideally a whole volume
    (smaller-than-tile slices are padded with the request's minimum)."""

    def __init__(self, unet, normalization: str, mean: float, std: float, threshold: float, size: int,
                 stride: int, weighting: str = "uniform", flips: bool = False):
        super().__init__(name="unet")
        self.unet = unet
        self.normalization = normalization
        self.mean, self.std, self.threshold = float(mean), float(std), float(threshold)
        self.size, self.stride, self.weighting, self.flips = int(size), int(stride), weighting, bool(flips)
        spec = tf.TensorSpec([None, None, None, 1], tf.float32, name="image")
        self.serving_default = tf.function(self._segment, input_signature=[spec])

    def _segment(self, image):
        from tf_vesselgan.evaluation.inference import segment_slices_tf

        prob = segment_slices_tf(self.unet, image, self.size, self.stride, self.normalization, self.mean,
                                 self.std, self.weighting, self.flips)
        return {"probability": prob, "label": tf.cast(prob > self.threshold, tf.uint8)}


def next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] if model_dir.exists() else []
    return max(versions, default=0) + 1


def _warmup(folder: Path, name: str, requests: list[tuple[str, dict]]) -> None:
    """TF Serving warm-up records: PredictionLog protos in assets.extra/."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    extra = folder / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
        for signature, inputs in requests:
            req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
            for key, value in inputs.items():
                req.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
            writer.write(log.SerializeToString())


def export_model(run, out_root, name: str | None = None, version: int | None = None, threshold: float | None = None,
                 max_count: int = 1024) -> Path:
    """Exports the generator (GAN run) or U-net (U-net run) of `run` to out_root/<version>.

    Returns the version folder. Written to a temporary folder and renamed into place.
    """
    from tf_vesselgan.training.run_folder import read_status

    run, root = Path(run), Path(out_root)
    status = read_status(run)
    kind = status.get("kind")
    if kind == "gan":
        module, signatures, warm, provenance = _generator_export(run, status, threshold, max_count)
    elif kind == "unet":
        module, signatures, warm, provenance = _unet_export(run, threshold)
    else:
        raise UserError(f"{run}: cannot export a run of kind {kind!r} (GAN or U-net runs)")
    if version is None:
        version = next_version(root)
    elif version < 1:
        raise UserError(f"--version must be a positive integer, got {version}")
    final = root / str(version)
    if final.exists():
        raise UserError(f"{final} already exists (versions are never overwritten; omit --version for the next)")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{version}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    info = provenance(version) if provenance else None
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        _warmup(tmp, name or root.name, warm)
        if info is not None:  # per version, where `vesselgan serve` finds it for /metadata
            (tmp / "assets.extra" / "provenance.json").write_text(json.dumps(info, indent=2))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if info is not None:
        partial = root / "provenance.json.partial"
        partial.write_text(json.dumps(info, indent=2))
        os.replace(partial, root / "provenance.json")
    return final


def _generator_export(run: Path, status: dict, threshold: float | None, max_count: int):
    """(module, signatures, warm-up requests, provenance(version)) of a GAN run."""
    from tf_vesselgan.training.run_models import restore_generator
    from tf_vesselgan.training.run_folder import load_run_config

    gen, cfg = restore_generator(run)
    thr = cfg.gan.label_threshold if threshold is None else threshold
    module = GeneratorModule(gen, thr, max_count)
    signatures = {"serving_default": module.serving_default, "sample": module.sample, "raw": module.raw}
    warm = [("serving_default", {"noise": np.zeros((1, module.latent), np.float32)}),
            ("sample", {"count": np.int32(2), "seed": np.int64(0)})]
    auto = threshold is None and load_run_config(run).gan.label_threshold == "auto"
    return module, signatures, warm, lambda version: _provenance(version, cfg, status, thr, auto)


def _unet_export(run: Path, threshold: float | None):
    """(module, signatures, warm-up requests, None) of a U-net run."""
    from tf_vesselgan.training.run_folder import load_run_config
    from tf_vesselgan.training.unet_trainer import load_unet

    unet, st = load_unet(run)
    u = load_run_config(run).unet
    # the threshold `vesselgan segment` uses: tuned on validation patients when it was
    thr = st.get("tuned_threshold", st.get("threshold", 0.5)) if threshold is None else threshold
    size = int(st.get("patch_size", 96))
    module = UNetModule(unet, st["normalization"], st.get("mean", 0.0), st.get("std", 1.0), thr, size,
                        u.inference_stride, u.tile_weighting, u.tta_flips)
    warm = [("serving_default", {"image": np.zeros((1, size, size, 1), np.float32)})]
    return module, {"serving_default": module.serving_default}, warm, None


def _provenance(version: int, cfg, status: dict, threshold: float, auto: bool) -> dict:
    """provenance.json (next to the versions and in each version's assets.extra/): what the
    generator is, how it was trained and sampled, and its differential privacy (no case
    ids, file names or paths: those stay with the run)."""
    import tf_vesselgan
    from tf_vesselgan.training.dp import dp_statement

    g = cfg.gan
    return {"version": version, "arch": g.arch, "width": g.width, "latent_dim": g.latent_dim,
            "batch_size": g.batch_size, "seed": cfg.seed, "epochs_done": status.get("epochs_done"),
            "machine_seconds": status.get("machine_seconds"), "ema_decay": g.ema_decay, "sample_bn": g.sample_bn,
            "label_coding": g.label_coding, "label_blur": g.label_blur, "upsample": g.upsample,
            "label_head": g.label_head,
            "label_min_intensity": status.get("sampling", {}).get("label_min_intensity", 0.0),
            "critic_layout": g.critic_layout,
            "label_threshold": float(threshold), "label_threshold_rule": "auto" if auto else "fixed",
            "real_label_fraction": status.get("real_label_fraction"),
            "differential_privacy": dp_statement(status), "tf_vesselgan": tf_vesselgan.__version__}


def write_models_config(path, models: dict[str, str]) -> Path:
    """Writes/updates a TF Serving model_config_list: {name: base_path}; other entries kept."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(path)
    cfg = model_server_config_pb2.ModelServerConfig()
    if path.exists():
        text_format.Parse(path.read_text(), cfg)
    entries = {c.name: c for c in cfg.model_config_list.config}
    for name, base in models.items():
        if name in entries:
            entries[name].base_path = base
        else:
            c = cfg.model_config_list.config.add()
            c.name, c.base_path, c.model_platform = name, base, "tensorflow"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text_format.MessageToString(cfg))
    os.replace(tmp, path)
    return path


def read_models_config(path) -> dict[str, str]:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(path)
    if not path.exists():
        raise UserError(f"model config {path} does not exist")
    cfg = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(path.read_text(), cfg)
    except text_format.ParseError as exc:
        raise UserError(f"{path}: not a TF Serving model_config_list ({exc})") from None
    return {c.name: c.base_path for c in cfg.model_config_list.config}
