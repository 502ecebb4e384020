"""`vesselgan client sample`: synthetic pairs from a served generator over REST or gRPC.

Works unchanged against TensorFlow Serving and `vesselgan serve`. It draws the noise
exactly as `vesselgan sample` does (blocks of 256, stateless seed (seed, block)) and
calls `serving_default`, so it writes the same files for the same seed and model.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import orjson
import tensorflow as tf

from tf_vesselgan.errors import UserError
from tf_vesselgan.training.sampling import SAMPLE_BATCH, block_noise

BLOCK = SAMPLE_BATCH


class RestClient:
    def __init__(self, url: str, model: str, timeout: float = 120.0):
        self.base = f"{url.rstrip('/')}/v1/models/{model}"
        self.timeout = timeout

    def _request(self, path: str, body: dict | None = None) -> bytes:
        """The response body; server errors and unreachable servers become UserErrors."""
        data = None if body is None else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        req = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            try:
                msg = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                msg = exc.reason
            raise UserError(f"server answered {exc.code}: {msg}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise UserError(f"cannot reach {self.base}: {getattr(exc, 'reason', exc)}") from None

    def _call(self, path: str, body: dict | None = None) -> dict:
        return orjson.loads(self._request(path, body))

    def latent_dim(self) -> int:
        sigs = self._call("/metadata")["metadata"]["signature_def"]["signature_def"]
        self.has_raw = "raw" in sigs  # compact binary outputs (exports from this version on)
        return int(sigs["serving_default"]["inputs"]["noise"]["tensor_shape"]["dim"][1]["size"])

    def predict(self, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "has_raw", None) is None:
            self.latent_dim()
        if self.has_raw:
            out = self._call(":predict", {"signature_name": "raw", "inputs": {"noise": noise}})["outputs"]
            return _decode_b64_tensors(out["image_bytes"])[..., None], _decode_b64_tensors(out["label_bytes"])[..., None]
        raw = self._request(":predict", {"signature_name": "serving_default", "inputs": {"noise": noise}})
        shape = None
        try:
            image, label = numeric_array(raw, b"image"), numeric_array(raw, b"label")
            size = int(round(np.sqrt(image.size / len(noise))))
            shape = (len(noise), size, size, 1)
            return image.reshape(shape).astype(np.float32), label.reshape(shape).astype(np.uint8)
        except ValueError:  # not the compact layout this parser expects: the generic route
            out = orjson.loads(raw)["outputs"]
            return np.asarray(out["image"], np.float32), np.asarray(out["label"], np.uint8)


def _decode_b64_tensors(items) -> np.ndarray:
    """[{"b64": serialized TensorProto}, ...] → stacked array."""
    import base64

    from tensorflow.core.framework import tensor_pb2

    return np.stack([tf.make_ndarray(tensor_pb2.TensorProto.FromString(base64.b64decode(i["b64"]))) for i in items])


_SEPARATORS = bytes.maketrans(b"[],", b"   ")


def numeric_array(raw: bytes, key: bytes) -> np.ndarray:
    """The flat values of the all-numeric JSON array under `"key":` in `raw`.

    Parsing a [64, 96, 96, 1] nested list with a JSON library builds ~600k Python lists
    (~0.5 s); here the array's extent is found from the bracket depth with NumPy and its
    numbers are read in one pass. Raises ValueError when the layout is not as expected.
    """
    at = raw.find(b'"' + key + b'"')
    if at < 0:
        raise ValueError(f"no {key!r} in the response")
    start = raw.find(b"[", at)
    if start < 0:
        raise ValueError("no array")
    buf = np.frombuffer(raw, np.uint8, offset=start)
    depth = np.cumsum((buf == ord("[")).astype(np.int32) - (buf == ord("]")).astype(np.int32))
    closing = np.flatnonzero(depth == 0)
    if not len(closing):
        raise ValueError("unterminated array")
    body = raw[start:start + int(closing[0]) + 1]
    if any(c in body for c in (b'"', b"{", b"n", b"N")):  # strings, objects, null/NaN: not plain numbers
        raise ValueError("non-numeric array")
    values = np.fromstring(body.translate(_SEPARATORS).decode("ascii"), dtype=np.float64, sep=" ")
    if values.size != body.count(b",") + 1:
        raise ValueError("could not read every number")
    return values


class GrpcClient:
    def __init__(self, target: str, model: str, timeout: float = 120.0):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        from tf_vesselgan.serving.grpc_service import MAX_MESSAGE

        self.grpc = grpc
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                                              ("grpc.max_send_message_length", MAX_MESSAGE)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model, self.target, self.timeout = model, target, timeout

    def _rpc(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self.grpc.RpcError as exc:
            raise UserError(f"gRPC {self.target}: {exc.code().name}: {exc.details()}") from None

    def latent_dim(self) -> int:
        from tensorflow_serving.apis import get_model_metadata_pb2

        req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        req.model_spec.name = self.model
        resp = self._rpc(self.stub.GetModelMetadata, req)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        resp.metadata["signature_def"].Unpack(sigmap)
        return int(sigmap.signature_def["serving_default"].inputs["noise"].tensor_shape.dim[1].size)

    def predict(self, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from tensorflow_serving.apis import predict_pb2

        req = predict_pb2.PredictRequest()
        req.model_spec.name = self.model
        req.model_spec.signature_name = "serving_default"
        req.inputs["noise"].CopyFrom(tf.make_tensor_proto(noise))
        resp = self._rpc(self.stub.Predict, req)
        return tf.make_ndarray(resp.outputs["image"]), tf.make_ndarray(resp.outputs["label"])


def remote_batches(client, n: int, seed: int, batch: int = BLOCK):
    """Yields (image [b,P,P], label [b,P,P]) with `vesselgan sample`'s noise for `seed`,
    at most `batch` samples per request."""
    latent = client.latent_dim()
    for k, start in enumerate(range(0, n, BLOCK)):
        z = block_noise(seed, k, latent)[:min(BLOCK, n - start)].numpy()
        for i in range(0, len(z), batch):
            image, label = client.predict(z[i:i + batch])
            yield image[..., 0], label[..., 0]


def client_sample(n: int, seed: int, out, model: str = "generator", url: str | None = None, grpc: str | None = None,
                  fmt: str = "npz", overwrite: bool = False, progress: bool = True, batch: int = BLOCK):
    from tf_vesselgan.training.sampling import write_pairs

    if (url is None) == (grpc is None):
        raise UserError("give exactly one of --url (REST) or --grpc (host:port)")
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    client = RestClient(url, model) if url else GrpcClient(grpc, model)
    if batch <= 0:
        raise UserError(f"--batch must be positive, got {batch}")
    first = remote_batches(client, n, seed, batch)
    image, label = next(first)  # reach the server before creating any output
    size = image.shape[1]

    def batches():
        yield image, label
        yield from first

    return write_pairs(batches(), n, size, out, {"seed": seed, "served_model": model}, fmt, overwrite, progress)
