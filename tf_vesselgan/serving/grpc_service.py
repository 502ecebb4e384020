"""TF Serving's gRPC API on the built-in server: PredictionService (Predict,
GetModelMetadata) and ModelService (GetModelStatus), from tensorflow-serving-api."""
from __future__ import annotations

from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from tf_vesselgan.serving.registry import Registry, ServingError

MAX_MESSAGE = 256 * 1024 * 1024


def _version(spec):
    return spec.version.value if spec.HasField("version") else None


def _abort(context, exc: ServingError):
    context.abort(getattr(grpc.StatusCode, exc.code, grpc.StatusCode.INTERNAL), exc.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: Registry):
        self.registry = registry

    def Predict(self, request, context):
        try:
            signature = request.model_spec.signature_name or "serving_default"
            try:
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            except (TypeError, ValueError) as exc:
                raise ServingError("INVALID_ARGUMENT", f"malformed input tensor: {exc}") from None
            lv, outputs = self.registry.predict(request.model_spec.name, _version(request.model_spec), signature, inputs)
            resp = predict_pb2.PredictResponse()
            resp.model_spec.name = lv.name
            resp.model_spec.version.value = lv.version
            resp.model_spec.signature_name = signature
            for k, v in outputs.items():
                resp.outputs[k].CopyFrom(tf.make_tensor_proto(v))
            return resp
        except ServingError as exc:
            _abort(context, exc)

    def GetModelMetadata(self, request, context):
        try:
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
        except ServingError as exc:
            _abort(context, exc)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: Registry):
        self.registry = registry

    def GetModelStatus(self, request, context):
        try:
            lv = self.registry.get(request.model_spec.name, _version(request.model_spec))
            resp = get_model_status_pb2.GetModelStatusResponse()
            st = resp.model_version_status.add()
            st.version = lv.version
            st.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
            return resp
        except ServingError as exc:
            _abort(context, exc)


def make_grpc_server(registry: Registry, host: str, port: int, workers: int = 8) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_send_message_length", MAX_MESSAGE),
                                  ("grpc.max_receive_message_length", MAX_MESSAGE)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(registry), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(registry), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    return server, bound
