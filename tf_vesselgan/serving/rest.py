"""TF Serving's REST API on the built-in server: status, metadata, predict (row and
columnar formats), `{"error": ...}` JSON for every error (also malformed request lines
and unsupported methods), bounded request bodies, a read timeout per connection and a
cap on open connections (slow clients cannot pin threads and descriptors forever)."""
from __future__ import annotations

import base64
import re
import sys
import threading
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


MAX_VERSION_DIGITS = 18  # TF Serving versions are int64


def internal_error(exc: Exception) -> str:
    """The operator sees the details on stderr; the client a message without server paths."""
    print(f"vesselgan serve: internal error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    return "internal error (details in the server's log)"


class Handler(BaseHTTPRequestHandler):
    registry: Registry
    max_body: int
    protocol_version = "HTTP/1.1"
    timeout = 10.0  # seconds a connection may stay silent (socket read timeout)

    def log_message(self, fmt, *args):  # quiet: one line per error only
        pass

    def parse_request(self) -> bool:
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) == 2 or (len(words) == 3 and words[2] == "HTTP/0.9"):
            # HTTP/0.9 has no headers to wait for and none to answer with: refuse in HTTP/1.0
            self.command, self.path, self.request_version = words[0], words[1], "HTTP/1.0"
            self.send_error(400, "HTTP/0.9 requests are not supported")
            return False
        return super().parse_request()

    def send_error(self, code, message=None, explain=None):
        """Errors found by the HTTP parser (bad request line, unsupported method, header
        overflow) answered as JSON like every other error."""
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self.close_connection = True
        body = orjson.dumps({"error": message or self.responses.get(code, ("error",))[0]})
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
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
        if version is not None and (not version.isdigit() or len(version) > MAX_VERSION_DIGITS):
            raise ServingError("INVALID_ARGUMENT", f"version must be a positive integer of at most "
                               f"{MAX_VERSION_DIGITS} digits, got {version[:24]!r}")
        return m["name"], int(version) if version else None, m["rest"]

    def _handle(self, method: str) -> None:
        try:
            name, version, rest = self._route()
            if method == "GET" and rest is None:
                self._send(200, {"model_version_status": self.registry.status(name, version)})
            elif method == "GET" and rest == "/metadata":
                lv = self.registry.get(name, version)
                metadata = {"signature_def": {"signature_def": signature_defs_json(lv)}}
                if lv.provenance is not None:  # our extension; TF Serving answers signature_def only
                    metadata["provenance"] = lv.provenance
                self._send(200, {"model_spec": {"name": name, "signature_name": "", "version": str(lv.version)},
                                 "metadata": metadata})
            elif method == "POST" and rest == ":predict":
                self._send(200, self._predict(name, version))
            else:
                raise ServingError("NOT_FOUND", f"Malformed request: {method} {self.path}")
        except ServingError as exc:
            self._send(exc.http_status, {"error": exc.message})
        except Exception as exc:  # a bug: report it, keep serving
            self._send(500, {"error": internal_error(exc)})

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

    def _not_allowed(self):
        self._drain(int(self.headers.get("Content-Length") or 0) if (self.headers.get("Content-Length") or "").isdigit()
                    else 0)
        self.send_error(405, f"method {self.command} is not supported (GET for status and metadata, POST for predict)")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_TRACE = do_CONNECT = _not_allowed


class CappedHTTPServer(ThreadingHTTPServer):
    """At most `max_connections` connections at once (one thread each); the next is told
    503 and closed at once instead of queuing behind slow clients."""

    daemon_threads = True

    def __init__(self, address, handler, max_connections: int):
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            body = orjson.dumps({"error": "too many open connections; try again"})
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_rest_server(registry: Registry, host: str, port: int, max_body: int, read_timeout: float = 10.0,
                     max_connections: int = 128) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"registry": registry, "max_body": max_body, "timeout": read_timeout})
    return CappedHTTPServer((host, port), handler, max_connections)

