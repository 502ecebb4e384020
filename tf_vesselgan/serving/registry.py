"""Models served by the built-in server: TF Serving's folder layout, highest version,
new versions picked up without restart, inputs checked before they reach TensorFlow.
"""
from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from pathlib import Path

import numpy as np
import tensorflow as tf


class ServingError(Exception):
    """An error returned to the client: `code` is a gRPC status name, mapped to HTTP."""

    HTTP = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "DEADLINE_EXCEEDED": 504, "RESOURCE_EXHAUSTED": 413,
            "UNAVAILABLE": 503, "INTERNAL": 500}

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    @property
    def http_status(self) -> int:
        return self.HTTP.get(self.code, 500)


class LoadedVersion:
    def __init__(self, name: str, version: int, path: Path):
        from tensorflow.core.protobuf import saved_model_pb2

        self.name, self.version, self.path = name, version, path
        self.model = tf.saved_model.load(str(path))
        sm = saved_model_pb2.SavedModel()
        sm.ParseFromString((path / "saved_model.pb").read_bytes())
        self.signature_defs = {k: v for k, v in sm.meta_graphs[0].signature_def.items() if k != "__saved_model_init_op"}
        self.specs = {}
        for key, fn in self.model.signatures.items():
            _, kwargs = fn.structured_input_signature
            self.specs[key] = {n: (s.dtype, s.shape) for n, s in kwargs.items()}
        self.provenance = _provenance(path)


def _provenance(path: Path) -> dict | None:
    """The version's assets.extra/provenance.json (what `vesselgan export` wrote: training,
    sampling, differential privacy), or None when absent or unreadable."""
    import json

    try:
        value = json.loads((path / "assets.extra" / "provenance.json").read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class Registry:
    """name → loaded versions; rescans the base paths at most every `poll` seconds."""

    def __init__(self, models: dict[str, str], max_samples: int = 1024, timeout: float = 30.0,
                 poll: float = 2.0, workers: int = 4):
        self.base = {n: Path(p) for n, p in models.items()}
        self.max_samples, self.timeout, self.poll = max_samples, timeout, poll
        self.loaded: dict[str, dict[int, LoadedVersion]] = {n: {} for n in models}
        self.failed: set[tuple[str, int]] = set()  # versions that did not load: skipped, logged once
        self._lock = threading.Lock()
        self._scanned = 0.0
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._scanned < self.poll:
            return
        with self._lock:
            self._scanned = time.monotonic()
            for name, base in self.base.items():
                versions = sorted(int(p.name) for p in base.iterdir()
                                  if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists()) \
                    if base.is_dir() else []
                # the newest version that loads (export renames into place, so only whole
                # folders are seen); one that fails is skipped and the last good one serves on
                for v in reversed(versions):
                    if v in self.loaded[name]:
                        break
                    if (name, v) in self.failed:
                        continue
                    try:
                        self.loaded[name] = {v: LoadedVersion(name, v, base / str(v))}
                        break
                    except Exception as exc:  # a damaged SavedModel raises several TF exception types
                        self.failed.add((name, v))
                        print(f"vesselgan serve: {name} version {v} does not load, skipped "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                              file=sys.stderr, flush=True)

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        self.refresh()
        if name not in self.loaded:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
        versions = self.loaded[name]
        if not versions:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name}): no version loaded")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
        return versions[version]

    def status(self, name: str, version: int | None = None) -> list[dict]:
        lv = self.get(name, version)
        return [{"version": str(lv.version), "state": "AVAILABLE",
                 "status": {"error_code": "OK", "error_message": ""}}]

    # -- prediction ---------------------------------------------------------------------
    def check_inputs(self, lv: LoadedVersion, signature: str, inputs: dict) -> dict:
        if signature not in lv.specs:
            raise ServingError("INVALID_ARGUMENT", f"Serving signature name: \"{signature}\" not found in signature def")
        spec = lv.specs[signature]
        missing, extra = sorted(set(spec) - set(inputs)), sorted(set(inputs) - set(spec))
        if missing or extra:
            raise ServingError("INVALID_ARGUMENT", f"signature '{signature}' takes inputs {sorted(spec)}; "
                               f"missing {missing}, unexpected {extra}")
        out = {}
        for key, (dtype, shape) in spec.items():
            value = inputs[key]
            try:
                arr = np.asarray(value)
                if arr.dtype == object or arr.dtype.kind not in "iuf":  # bool is not a number here
                    raise ValueError("not numeric")
                if dtype.is_integer and arr.dtype.kind == "f":
                    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                        raise ValueError("not an integer")
                cast = arr.astype(dtype.as_numpy_dtype)
                if dtype.is_integer and not np.array_equal(cast, arr):
                    raise ValueError("out of range")
            except (ValueError, TypeError, OverflowError):
                raise ServingError("INVALID_ARGUMENT", f"input '{key}' must be {dtype.name}") from None
            if dtype.is_floating and not np.all(np.isfinite(cast)):
                raise ServingError("INVALID_ARGUMENT", f"input '{key}' has NaN or Inf values")
            if not shape.is_compatible_with(cast.shape):
                raise ServingError("INVALID_ARGUMENT", f"input '{key}' must have shape {_shape(shape)}, "
                                   f"got {list(cast.shape)}")
            out[key] = cast
        n = self._batch_size(signature, out)
        if n < 0 or n > self.max_samples:
            raise ServingError("INVALID_ARGUMENT", f"requests are limited to 0..{self.max_samples} samples, asked {n}")
        return out

    @staticmethod
    def _batch_size(signature: str, inputs: dict) -> int:
        if "count" in inputs:
            return int(inputs["count"])
        first = next(iter(inputs.values()))
        return int(first.shape[0]) if first.ndim else 1

    def predict(self, name: str, version: int | None, signature: str, inputs: dict) -> tuple[LoadedVersion, dict]:
        lv = self.get(name, version)
        checked = self.check_inputs(lv, signature, inputs)
        fn = lv.model.signatures[signature]
        future = self.pool.submit(lambda: {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in checked.items()}).items()})
        try:
            return lv, future.result(timeout=self.timeout)
        except FutureTimeout:
            raise ServingError("DEADLINE_EXCEEDED", f"request took longer than {self.timeout:g} s") from None
        except tf.errors.InvalidArgumentError as exc:
            raise ServingError("INVALID_ARGUMENT", exc.message.splitlines()[0]) from None


def _shape(shape: tf.TensorShape) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in shape.as_list()) + "]" if shape.rank is not None else "any"
