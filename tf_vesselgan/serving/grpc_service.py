"""TF Serving's gRPC API on the built-in server: PredictionService (Predict,
GetModelMetadata) and ModelService (GetModelStatus), from tensorflow-serving-api.

Every bad request is INVALID_ARGUMENT with a message, checked before anything is
allocated: undecodable bytes, non-numeric tensor types, and tensors whose declared shape
is larger than the values they carry (TF would fill such a tensor, e.g. 10⁹ × 100 floats
from an empty proto)."""
from __future__ import annotations

import functools
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from tf_vesselgan.serving.registry import Registry, ServingError
from tf_vesselgan.serving.rest import internal_error

MAX_MESSAGE = 256 * 1024 * 1024
# tensor types a request may carry (numbers; bool and strings are not noise, seeds or images)
NUMERIC = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_HALF: "half_val",
           types_pb2.DT_BFLOAT16: "half_val", types_pb2.DT_INT8: "int_val", types_pb2.DT_UINT8: "int_val",
           types_pb2.DT_INT16: "int_val", types_pb2.DT_UINT16: "int_val", types_pb2.DT_INT32: "int_val",
           types_pb2.DT_UINT32: "uint32_val", types_pb2.DT_INT64: "int64_val", types_pb2.DT_UINT64: "uint64_val"}


class Undecodable:
    """What the request deserializer hands on for bytes that are not the request message."""

    def __init__(self, error: str):
        self.error = error


def _parser(message_cls):
    def parse(data: bytes):
        try:
            return message_cls.FromString(data)
        except (DecodeError, ValueError, RuntimeError) as exc:
            return Undecodable(str(exc) or "malformed message")

    return parse


def tensor_from_proto(key: str, proto) -> np.ndarray:
    """A request tensor as a NumPy array, refused unless numeric and exactly as large as
    the values it carries (a scalar may carry one value)."""
    field = NUMERIC.get(proto.dtype)
    if field is None:
        name = types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values() else proto.dtype
        raise ServingError("INVALID_ARGUMENT", f"input '{key}': tensor type {name} is not supported (numbers only)")
    if proto.tensor_shape.unknown_rank:
        raise ServingError("INVALID_ARGUMENT", f"input '{key}': the tensor shape must be known")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise ServingError("INVALID_ARGUMENT", f"input '{key}': negative dimension in {dims}")
    count = int(np.prod(dims, dtype=object)) if dims else 1
    itemsize = tf.dtypes.as_dtype(proto.dtype).size
    carried = len(proto.tensor_content) // itemsize if proto.tensor_content else len(getattr(proto, field))
    if proto.tensor_content and len(proto.tensor_content) != count * itemsize or carried != count:
        raise ServingError("INVALID_ARGUMENT", f"input '{key}': shape {dims} needs {count} values, the request "
                           f"carries {carried}")
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as exc:
        raise ServingError("INVALID_ARGUMENT", f"input '{key}': malformed tensor: {exc}") from None


def _version(spec):
    return spec.version.value if spec.HasField("version") else None


def _decoded(request) -> None:
    if isinstance(request, Undecodable):
        raise ServingError("INVALID_ARGUMENT", f"the request is not a valid protocol buffer ({request.error})")


def _abort(context, exc: ServingError):
    context.abort(getattr(grpc.StatusCode, exc.code, grpc.StatusCode.INTERNAL), exc.message)


def _rpc(method):
    """A servicer method whose request is checked first and whose errors become statuses:
    ServingError its own code, anything else INTERNAL without internals (serving goes on)."""
    @functools.wraps(method)
    def handler(self, request, context):
        try:
            _decoded(request)
            return method(self, request, context)
        except ServingError as exc:
            _abort(context, exc)
        except Exception as exc:  # a bug: report it without internals, keep serving
            context.abort(grpc.StatusCode.INTERNAL, internal_error(exc))

    return handler


class _Servicer:
    """A gRPC servicer answering from the model registry."""

    def __init__(self, registry: Registry):
        self.registry = registry


class PredictionService(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    @_rpc
    def Predict(self, request, context):
        signature = request.model_spec.signature_name or "serving_default"
        inputs = {k: tensor_from_proto(k, v) for k, v in request.inputs.items()}
        lv, outputs = self.registry.predict(request.model_spec.name, _version(request.model_spec), signature, inputs)
        resp = predict_pb2.PredictResponse()
        resp.model_spec.name = lv.name
        resp.model_spec.version.value = lv.version
        resp.model_spec.signature_name = signature
        for k, v in outputs.items():
            resp.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return resp

    @_rpc
    def GetModelMetadata(self, request, context):
        if list(request.metadata_field) != ["signature_def"]:
            raise ServingError("INVALID_ARGUMENT", "metadata_field must be ['signature_def']")
        lv = self.registry.get(request.model_spec.name, _version(request.model_spec))
        resp = get_model_metadata_pb2.GetModelMetadataResponse()
        resp.model_spec.name = lv.name
        resp.model_spec.version.value = lv.version
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        for k, v in lv.signature_defs.items():
            sigmap.signature_def[k].CopyFrom(v)
        resp.metadata["signature_def"].Pack(sigmap)
        return resp


class ModelService(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    @_rpc
    def GetModelStatus(self, request, context):
        lv = self.registry.get(request.model_spec.name, _version(request.model_spec))
        resp = get_model_status_pb2.GetModelStatusResponse()
        st = resp.model_version_status.add()
        st.version = lv.version
        st.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return resp


def make_grpc_server(registry: Registry, host: str, port: int, workers: int = 8) -> tuple[grpc.Server, int]:
    # so_reuseport 0: a second server on a port in use fails instead of sharing it silently
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_send_message_length", MAX_MESSAGE),
                                  ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.so_reuseport", 0)])
    prediction, models = PredictionService(registry), ModelService(registry)
    methods = {
        "tensorflow.serving.PredictionService": {
            "Predict": (prediction.Predict, predict_pb2.PredictRequest, predict_pb2.PredictResponse),
            "GetModelMetadata": (prediction.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest,
                                 get_model_metadata_pb2.GetModelMetadataResponse)},
        "tensorflow.serving.ModelService": {
            "GetModelStatus": (models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest,
                               get_model_status_pb2.GetModelStatusResponse)},
    }
    for service, table in methods.items():  # the generated registration, with a deserializer that cannot raise
        handlers = {name: grpc.unary_unary_rpc_method_handler(fn, request_deserializer=_parser(req),
                                                              response_serializer=resp.SerializeToString)
                    for name, (fn, req, resp) in table.items()}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # newer grpcio raises instead of returning 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind gRPC port {host}:{port} (in use?)")
    return server, bound
