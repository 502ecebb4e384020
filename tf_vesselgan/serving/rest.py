"""TF Serving's REST API on the built-in server: status, metadata, predict (row and
columnar formats), `{"error": ...}` responses, bounded request bodies."""
from __future__ import annotations

import base64
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import orjson

from tf_vesselgan.serving.registry import Registry, ServingError

PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<rest>/metadata|:predict)?$")


def signature_defs_json(lv) -> dict:
    from google.protobuf import json_format

    return {k: json_format.MessageToDict(v, preserving_proto_field_name=True) for k, v in lv.signature_defs.items()}


def parse_predict(body: bytes) -> tuple[str, dict, str]:
    """→ (signature name, {input: value}, "row"|"columnar")."""
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {exc}") from None
    if not isinstance(req, dict):
        raise ServingError("INVALID_ARGUMENT", "the request body must be a JSON object")
    signature = req.get("signature_name", "serving_default")
    if not isinstance(signature, str):
        raise ServingError("INVALID_ARGUMENT", "'signature_name' must be a string")
    if ("instances" in req) == ("inputs" in req):
        raise ServingError("INVALID_ARGUMENT", "the request must have exactly one of 'instances' (row format) "
                           "or 'inputs' (columnar format)")
    if "inputs" in req:
        inputs = req["inputs"]
        return signature, inputs if isinstance(inputs, dict) else {None: inputs}, "columnar"
    rows = req["instances"]
    if not isinstance(rows, list) or not rows:
        raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
    if all(isinstance(r, dict) for r in rows):
        keys = set(rows[0])
        if any(set(r) != keys for r in rows):
            raise ServingError("INVALID_ARGUMENT", "every instance must name the same inputs")
        return signature, {k: [r[k] for r in rows] for k in keys}, "row"
    if any(isinstance(r, dict) for r in rows):
        raise ServingError("INVALID_ARGUMENT", "instances mix named and unnamed inputs")
    return signature, {None: rows}, "row"


def _json_ready(key: str, value):
    """String tensors as TF Serving writes them: {"b64": ...} per element for *_bytes."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        if key.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode("ascii")}, otypes=[object])(value).tolist()
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(value).tolist()
    return value


def format_outputs(outputs: dict, fmt: str) -> dict:
    outputs = {k: _json_ready(k, v) for k, v in outputs.items()}
    if fmt == "columnar":
        return {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}
    n = {len(v) for v in outputs.values()}
    if len(n) != 1:
        raise ServingError("INVALID_ARGUMENT", "outputs differ in batch size; use the columnar ('inputs') format")
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(n.pop())]}


class Handler(BaseHTTPRequestHandler):
    registry: Registry
    max_body: int
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: one line per error only
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self):
        m = PATH.match(self.path.split("?", 1)[0])
        if not m:
            raise ServingError("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
        version = m["version"]
        if version is not None and not version.isdigit():
            raise ServingError("INVALID_ARGUMENT", f"version must be a positive integer, got {version!r}")
        return m["name"], int(version) if version else None, m["rest"]

    def _handle(self, method: str) -> None:
        try:
            name, version, rest = self._route()
            if method == "GET" and rest is None:
                self._send(200, {"model_version_status": self.registry.status(name, version)})
            elif method == "GET" and rest == "/metadata":
                lv = self.registry.get(name, version)
                self._send(200, {"model_spec": {"name": name, "signature_name": "", "version": str(lv.version)},
                                 "metadata": {"signature_def": {"signature_def": signature_defs_json(lv)}}})
            elif method == "POST" and rest == ":predict":
                self._send(200, self._predict(name, version))
            else:
                raise ServingError("NOT_FOUND", f"Malformed request: {method} {self.path}")
        except ServingError as exc:
            self._send(exc.http_status, {"error": exc.message})
        except Exception as exc:  # a bug: report it, keep serving
            self._send(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    def _predict(self, name, version) -> dict:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise ServingError("INVALID_ARGUMENT", "a Content-Length header is required")
        if int(length) > self.max_body:
            self.close_connection = True
            self._drain(int(length))  # so the client can read the answer; bounded, never stored
            raise ServingError("RESOURCE_EXHAUSTED", f"request body of {length} bytes exceeds {self.max_body}")
        body = self.rfile.read(int(length))
        signature, inputs, fmt = parse_predict(body)
        lv = self.registry.get(name, version)
        spec = lv.specs.get(signature)
        if None in inputs:  # unnamed: allowed when the signature has a single input
            if spec is not None and len(spec) == 1:
                inputs = {next(iter(spec)): inputs[None]}
            elif spec is not None:
                raise ServingError("INVALID_ARGUMENT", f"signature '{signature}' has inputs {sorted(spec)}: name them")
        if fmt == "row" and spec is not None and any(s[1].rank == 0 for s in spec.values()):
            raise ServingError("INVALID_ARGUMENT", f"signature '{signature}' takes scalar inputs; use the columnar "
                               "format: {\"inputs\": {...}}")
        _, outputs = self.registry.predict(name, version, signature, inputs)
        return format_outputs(outputs, fmt)

    def _drain(self, length: int, limit: int = 64 * 1024 * 1024) -> None:
        left = min(length, limit)
        self.connection.settimeout(5.0)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


def make_rest_server(registry: Registry, host: str, port: int, max_body: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"registry": registry, "max_body": max_body})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server

