"""Built-in server: Google's gRPC stubs and plain HTTP, outputs equal in-process
sampling for the same seed, error cases answered while the server keeps serving."""
import json
import shutil
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from tf_vesselgan.serving.server import Server


@pytest.fixture(scope="module")
def server(exported):
    srv = Server(exported["root"] / "models.config", rest_port=0, grpc_port=0, max_samples=64,
                 max_body=2_000_000, poll=0.0).start()
    yield srv
    srv.stop()


def http(srv, path, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{srv.rest_port}{path}", data=data)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stubs(srv):
    ch = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    return prediction_service_pb2_grpc.PredictionServiceStub(ch), model_service_pb2_grpc.ModelServiceStub(ch)


def healthy(srv):
    code, body = http(srv, "/v1/models/generator")
    return code == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"


def local(gen, n, seed):
    from tf_vesselgan.training.sampling import generate

    parts = list(generate(gen, n, seed, 0.8))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_rest_status_metadata_and_predict_formats(server, exported):
    assert http(server, "/v1/models/generator/versions/1")[0] == 200
    code, meta = http(server, "/v1/models/generator/metadata")
    sig = meta["metadata"]["signature_def"]["signature_def"]
    assert code == 200 and set(sig) == {"serving_default", "sample", "raw"}
    assert sig["sample"]["inputs"]["count"]["dtype"] == "DT_INT32"
    image, label = local(exported["generator"], 3, 9)
    code, col = http(server, "/v1/models/generator:predict",
                     {"signature_name": "sample", "inputs": {"count": 3, "seed": 9}})
    assert code == 200
    np.testing.assert_allclose(np.asarray(col["outputs"]["image"])[..., 0], image, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(col["outputs"]["label"])[..., 0], label)
    z = tf.random.stateless_normal([256, 100], seed=[9, 0])[:3].numpy()
    code, rows = http(server, "/v1/models/generator:predict", {"instances": z.tolist()})
    assert code == 200 and len(rows["predictions"]) == 3
    np.testing.assert_allclose(np.asarray(rows["predictions"][2]["image"])[..., 0], image[2], atol=1e-5)
    code, named = http(server, "/v1/models/generator/versions/1:predict", {"instances": [{"noise": z[0].tolist()}]})
    assert code == 200 and np.asarray(named["predictions"][0]["label"]).shape == (96, 96, 1)


def test_raw_signature_returns_b64_tensors_over_rest(server, exported):
    import base64

    from tensorflow.core.framework import tensor_pb2

    z = tf.random.stateless_normal([256, 100], seed=[2, 0])[:4].numpy()
    code, out = http(server, "/v1/models/generator:predict", {"signature_name": "raw", "inputs": {"noise": z.tolist()}})
    assert code == 200 and len(out["outputs"]["image_bytes"]) == 4
    decode = lambda item: tf.make_ndarray(tensor_pb2.TensorProto.FromString(base64.b64decode(item["b64"])))  # noqa: E731
    image = np.stack([decode(i) for i in out["outputs"]["image_bytes"]])
    label = np.stack([decode(i) for i in out["outputs"]["label_bytes"]])
    want_image, want_label = local(exported["generator"], 4, 2)
    np.testing.assert_allclose(image, want_image, atol=1e-5)
    np.testing.assert_array_equal(label, want_label)
    assert label.dtype == np.uint8


def test_json_number_parser_reads_tf_serving_layouts():
    import orjson

    from tf_vesselgan.serving.client import numeric_array

    img = np.random.default_rng(0).uniform(-1, 1, (3, 96, 96, 1)).astype(np.float32)
    raw = orjson.dumps({"outputs": {"image": img, "label": (img > 0).astype(np.uint8)}}, option=orjson.OPT_SERIALIZE_NUMPY)
    np.testing.assert_array_equal(numeric_array(raw, b"image").astype(np.float32), img.ravel())
    np.testing.assert_array_equal(numeric_array(raw, b"label"), (img > 0).ravel())
    pretty = b'{\n "outputs": {\n  "label": [[1, 0]],\n  "image": [[-1.5e-3, 2.0]]\n }\n}'
    np.testing.assert_array_equal(numeric_array(pretty, b"image"), [-1.5e-3, 2.0])
    with pytest.raises(ValueError):
        numeric_array(b'{"outputs": {"image": [[1, "x"]]}}', b"image")


def test_grpc_predict_metadata_status_equal_in_process(server, exported):
    pred, models = stubs(server)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "generator"
    req.model_spec.signature_name = "sample"
    req.inputs["count"].CopyFrom(tf.make_tensor_proto(np.int32(40)))
    req.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.int64(3)))
    resp = pred.Predict(req, timeout=60)
    image, label = local(exported["generator"], 40, 3)
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["image"])[..., 0], image, atol=1e-5)
    np.testing.assert_array_equal(tf.make_ndarray(resp.outputs["label"])[..., 0], label)
    assert resp.model_spec.version.value == 1
    mreq = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    mreq.model_spec.name = "unet"
    sigmap = get_model_metadata_pb2.SignatureDefMap()
    pred.GetModelMetadata(mreq, timeout=30).metadata["signature_def"].Unpack(sigmap)
    assert set(sigmap.signature_def["serving_default"].outputs) == {"probability", "label"}
    sreq = get_model_status_pb2.GetModelStatusRequest()
    sreq.model_spec.name = "unet"
    st = models.GetModelStatus(sreq, timeout=30).model_version_status[0]
    assert st.version == 1 and st.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


@pytest.mark.parametrize("path,body,raw,code,words", [
    ("/v1/models/generator:predict", None, b"{not json", 400, "JSON Parse error"),
    ("/v1/models/nobody:predict", {"instances": [[0.0] * 100]}, None, 404, "Servable not found"),
    ("/v1/models/generator:predict", {"signature_name": "steal", "instances": [[0.0] * 100]}, None, 400, "not found"),
    ("/v1/models/generator:predict", {"instances": [["a"] * 100]}, None, 400, "must be float32"),
    ("/v1/models/generator:predict", {"instances": [[0.0] * 7]}, None, 400, "shape [None, 100]"),
    ("/v1/models/generator:predict", {"signature_name": "sample", "inputs": {"count": -1, "seed": 1}}, None, 400, "0..64"),
    ("/v1/models/generator:predict", {"signature_name": "sample", "inputs": {"count": 10**12, "seed": 1}}, None, 400, "int32"),
    ("/v1/models/generator:predict", {"signature_name": "sample", "inputs": {"count": 65, "seed": 1}}, None, 400, "0..64"),
    ("/v1/models/generator:predict", {"signature_name": "sample", "instances": [{"count": 1, "seed": 1}]}, None, 400, "columnar"),
    ("/v1/models/generator:predict", {"instances": [[0.0] * 100], "inputs": [[0.0] * 100]}, None, 400, "exactly one"),
    ("/v1/models/generator:predict", None, b'{"inputs": ' + b"[" * 20000 + b"]" * 20000 + b"}", 400, "JSON"),
    ("/v1/models/generator:predict", None, b" " * 3_000_000, 413, "exceeds"),
    ("/v1/models/generator/versions/7", None, None, 404, "Specific(generator, 7)"),
    ("/v2/whatever", None, None, 404, "Malformed request"),
])
def test_rest_errors_are_clear_and_the_server_keeps_serving(server, path, body, raw, code, words):
    got, payload = http(server, path, body, raw)
    assert got == code and words in payload["error"], payload
    assert healthy(server)


def test_grpc_errors_have_status_codes(server):
    pred, _ = stubs(server)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "generator"
    req.inputs["noise"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 5), np.float32)))
    with pytest.raises(grpc.RpcError) as e:
        pred.Predict(req, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shape" in e.value.details()
    req.model_spec.name = "missing"
    with pytest.raises(grpc.RpcError) as e:
        pred.Predict(req, timeout=30)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    req = predict_pb2.PredictRequest()
    req.model_spec.name, req.model_spec.signature_name = "generator", "sample"
    req.inputs["count"].CopyFrom(tf.make_tensor_proto(np.int32(100000)))
    req.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.int64(1)))
    with pytest.raises(grpc.RpcError) as e:
        pred.Predict(req, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert healthy(server)


def test_client_writes_the_same_files_as_sample_over_rest_and_grpc(server, exported, tmp_path, cli):
    from tf_vesselgan.training.sampling import write_samples

    write_samples(exported["generator"], 70, tmp_path / "local", seed=5, progress=False)
    want = np.load(tmp_path / "local" / "samples.npz")
    for flag, where in (("--url", f"http://127.0.0.1:{server.rest_port}"), ("--grpc", f"127.0.0.1:{server.grpc_port}")):
        out = tmp_path / flag.strip("-")
        code, stdout, err = cli("client", "sample", flag, where, "--n", 70, "--seed", 5, "--out", out,
                                  "--batch", 32)
        assert code == 0, err
        got = np.load(out / "samples.npz")
        np.testing.assert_allclose(got["image"], want["image"], atol=1e-5)
        np.testing.assert_array_equal(got["label"], want["label"])
    code, _, err = cli("client", "sample", "--url", f"http://127.0.0.1:{server.rest_port}", "--model", "nobody",
                       "--n", 3, "--out", tmp_path / "none")
    assert code == 2 and "Servable not found" in err and not (tmp_path / "none").exists()


def test_new_version_is_picked_up_without_restart(exported, tmp_path):
    from tests.serving.conftest import fake_gan_run
    from tf_vesselgan.serving.export import export_model, write_models_config

    base = tmp_path / "g"
    fake_gan_run(tmp_path / "run")
    export_model(tmp_path / "run", base)
    write_models_config(tmp_path / "m.config", {"generator": str(base)})
    srv = Server(tmp_path / "m.config", rest_port=0, grpc_port=0, poll=0.0).start()
    try:
        fake_gan_run(tmp_path / "run2", threshold=-1.0)  # every label 1: tells the versions apart
        export_model(tmp_path / "run2", base)
        code, body = http(srv, "/v1/models/generator")
        assert body["model_version_status"][0]["version"] == "2"
        code, out = http(srv, "/v1/models/generator:predict", {"signature_name": "sample", "inputs": {"count": 1, "seed": 0}})
        assert np.all(np.asarray(out["outputs"]["label"]) == 1)
    finally:
        srv.stop()


def test_request_timeout_is_deadline_exceeded(exported):
    srv = Server(exported["root"] / "models.config", rest_port=0, grpc_port=0, timeout=1e-6).start()
    try:
        code, body = http(srv, "/v1/models/generator:predict", {"signature_name": "sample", "inputs": {"count": 64, "seed": 0}})
        assert code == 504 and "longer than" in body["error"]
        assert healthy(srv)
    finally:
        srv.stop()
