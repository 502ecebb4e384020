"""`vesselgan serve`: TF Serving's REST and gRPC APIs over TF Serving's folder layout,
for machines without `tensorflow_model_server` (clients never change)."""
from __future__ import annotations

import signal
import sys
import threading

from tf_vesselgan.errors import UserError
from tf_vesselgan.serving.export import read_models_config
from tf_vesselgan.serving.grpc_service import make_grpc_server
from tf_vesselgan.serving.registry import Registry
from tf_vesselgan.serving.rest import make_rest_server


class Server:
    """Both endpoints over one registry; `start()` returns once they listen."""

    def __init__(self, model_config, host: str = "127.0.0.1", rest_port: int = 8501, grpc_port: int = 8500,
                 max_samples: int = 1024, max_body: int = 64 * 1024 * 1024, timeout: float = 30.0,
                 poll: float = 2.0, read_timeout: float = 10.0, max_connections: int = 128):
        models = read_models_config(model_config)
        if not models:
            raise UserError(f"{model_config} lists no models")
        self.registry = Registry(models, max_samples=max_samples, timeout=timeout, poll=poll)
        empty = [n for n, v in self.registry.loaded.items() if not v]
        if empty:
            raise UserError(f"no exported version found for {', '.join(empty)} (run `vesselgan export` first)")
        try:
            self.rest = make_rest_server(self.registry, host, rest_port, max_body, read_timeout, max_connections)
            self.grpc, self.grpc_port = make_grpc_server(self.registry, host, grpc_port)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}: {exc.strerror or exc}") from None
        self.host, self.rest_port = host, self.rest.server_address[1]
        self._thread = None

    def start(self) -> "Server":
        self.grpc.start()
        self._thread = threading.Thread(target=self.rest.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.rest.shutdown()
        self.rest.server_close()
        self.grpc.stop(grace=1).wait()
        self.registry.pool.shutdown(wait=False)


def serve(model_config, **kwargs) -> int:
    srv = Server(model_config, **kwargs).start()
    names = ", ".join(f"{n} v{max(v)}" for n, v in srv.registry.loaded.items())
    print(f"serving {names}: REST http://{srv.host}:{srv.rest_port}/v1/models/<name>, gRPC {srv.host}:{srv.grpc_port}",
          flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    srv.stop()
    print("server stopped", file=sys.stderr)
    return 0
