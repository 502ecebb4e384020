"""Built-in server: Google's gRPC stubs and plain HTTP, outputs equal in-process
sampling for the same seed, error cases answered while the server keeps serving."""
import json
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


def one_version_server(tmp_path):
    """(model base path, a started server) for a fresh generator export at version 1."""
    from tests.serving.conftest import fake_gan_run
    from tf_vesselgan.serving.export import export_model, write_models_config

    base = tmp_path / "g"
    fake_gan_run(tmp_path / "run")
    export_model(tmp_path / "run", base)
    write_models_config(tmp_path / "m.config", {"generator": str(base)})
    return base, Server(tmp_path / "m.config", rest_port=0, grpc_port=0, poll=0.0).start()


def test_new_version_is_picked_up_without_restart(exported, tmp_path):
    from tests.serving.conftest import fake_gan_run
    from tf_vesselgan.serving.export import export_model

    base, srv = one_version_server(tmp_path)
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


def raw_http(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends raw bytes, returns everything the server answers until it closes."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])
def test_other_methods_are_answered_with_json_errors(server, method):
    got = raw_http(server.rest_port, f"{method} /v1/models/generator HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                   f"Connection: close\r\n\r\n{{}}".encode())
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] in (b"405", b"501") and b"application/json" in head, got[:200]
    assert "error" in json.loads(body)
    assert healthy(server)


def test_head_http09_and_garbage_request_lines_get_an_answer(server):
    got = raw_http(server.rest_port, b"HEAD /v1/models/generator HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.") and b" 405 " in got.split(b"\r\n")[0] and got.endswith(b"\r\n\r\n")
    for line in (b"GET /v1/models/generator\r\n", b"GET /v1/models/generator HTTP/0.9\r\n\r\n",
                 b"\x00\xff garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"):
        got = raw_http(server.rest_port, line)
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.") and int(head.split(b" ")[1]) in (400, 505), (line, got[:200])
        assert "error" in json.loads(body)
    assert healthy(server)


def test_rest_edge_inputs(server):
    code, body = http(server, "/v1/models/generator/versions/" + "9" * 5000)
    assert code == 400 and "at most 18 digits" in body["error"]
    code, body = http(server, "/v1/models/generator:predict", {"instances": [[True] * 100]})
    assert code == 400 and "must be float32" in body["error"]  # bool is not noise
    assert healthy(server)


def grpc_predict_raw(srv, payload: bytes):
    ch = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    call = ch.unary_unary("/tensorflow.serving.PredictionService/Predict", request_serializer=lambda b: b,
                          response_deserializer=lambda b: b)
    return call(payload, timeout=30)


def test_grpc_bad_tensors_are_invalid_argument_before_allocation(server, exported):
    import time

    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    pred, _ = stubs(server)

    def request(proto):
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "generator"
        req.inputs["noise"].CopyFrom(proto)
        return req

    def proto(dtype, dims, **values):
        shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
        return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **values)

    bad = [(proto(types_pb2.DT_VARIANT, [2, 100]), "DT_VARIANT"),
           (proto(types_pb2.DT_RESOURCE, [2, 100]), "DT_RESOURCE"),
           (proto(types_pb2.DT_STRING, [1], string_val=[b"x"]), "DT_STRING"),
           (proto(types_pb2.DT_BOOL, [1, 100], bool_val=[True] * 100), "DT_BOOL"),
           (proto(types_pb2.DT_FLOAT, [10**9, 100]), "needs 100000000000 values"),
           (proto(types_pb2.DT_FLOAT, [2, 100], float_val=[0.5]), "needs 200 values"),
           (proto(types_pb2.DT_FLOAT, [1, 100], tensor_content=b"\0" * 12), "carries")]
    for p, words in bad:
        t0 = time.perf_counter()
        with pytest.raises(grpc.RpcError) as e:
            pred.Predict(request(p), timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in e.value.details(), e.value.details()
        assert time.perf_counter() - t0 < 5
    rng = np.random.default_rng(0)
    for payload in (rng.bytes(64), b"\xff" * 33, rng.bytes(4096)):
        with pytest.raises(grpc.RpcError) as e:
            grpc_predict_raw(server, payload)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    # half precision noise is numbers: accepted, and the same as its float32 value
    z = np.random.default_rng(1).standard_normal((2, 100)).astype(np.float16)
    got = pred.Predict(request(tf.make_tensor_proto(z)), timeout=30)
    want = pred.Predict(request(tf.make_tensor_proto(z.astype(np.float32))), timeout=30)
    np.testing.assert_array_equal(tf.make_ndarray(got.outputs["image"]), tf.make_ndarray(want.outputs["image"]))
    assert healthy(server)


def test_slow_clients_time_out_and_cannot_exhaust_the_server(exported):
    import socket
    import time

    srv = Server(exported["root"] / "models.config", rest_port=0, grpc_port=0, read_timeout=4.0,
                 max_connections=8).start()
    slow = []

    def slowloris(n):  # a request line and never the end of the headers
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.rest_port), timeout=30)
            s.sendall(b"GET /v1/models/generator HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)

    try:
        slowloris(5)
        assert healthy(srv)  # below the cap valid requests go through
        slowloris(8)  # now at the cap
        got = raw_http(srv.rest_port, b"GET /v1/models/generator HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b" 503 " in got.split(b"\r\n")[0]  # over the cap: told at once, not queued
        t0 = time.perf_counter()
        for s in slow:  # every silent connection is closed by the server: timed out, or 503 at the cap
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            assert data == b"" or b" 503 " in data.split(b"\r\n")[0], data[:100]
        assert time.perf_counter() - t0 < 4.0 + 20
        time.sleep(0.5)
        assert healthy(srv)
    finally:
        for s in slow:
            s.close()
        srv.stop()


def test_a_broken_new_version_is_skipped_and_the_last_good_one_serves(tmp_path, capfd):
    base, srv = one_version_server(tmp_path)
    try:
        (base / "2").mkdir()
        (base / "2" / "saved_model.pb").write_bytes(b"garbage" * 100)
        for _ in range(8):
            code, body = http(srv, "/v1/models/generator:predict", {"signature_name": "sample",
                                                                     "inputs": {"count": 1, "seed": 0}})
            assert code == 200, body
        code, body = http(srv, "/v1/models/generator")
        assert body["model_version_status"][0]["version"] == "1"
        code, body = http(srv, "/v1/models/generator/versions/2")
        assert code == 404 and str(tmp_path) not in json.dumps(body)
        assert capfd.readouterr().err.count("version 2 does not load") == 1  # logged once
    finally:
        srv.stop()


def test_a_second_server_on_a_used_grpc_port_fails(server, exported):
    from tf_vesselgan.errors import UserError

    with pytest.raises(UserError, match="cannot listen"):
        Server(exported["root"] / "models.config", rest_port=0, grpc_port=server.grpc_port)
