"""Minibatch discrimination (Salimans et al. 2016), as in the official DCGAN code."""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_vesselgan")
class MinibatchDiscrimination(keras.layers.Layer):
    """Appends, per sample, how close it is to the rest of the batch in `num_kernels` projections.

    o(x_i)_b = Σ_{j≠i} exp(−‖M_{i,b} − M_{j,b}‖₁), M = x·T reshaped to [N, B, C].
    """

    def __init__(self, num_kernels: int = 16, kernel_dim: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim

    def build(self, input_shape):
        self.t = self.add_weight(shape=(input_shape[-1], self.num_kernels * self.kernel_dim),
                                 initializer=keras.initializers.RandomNormal(stddev=0.02), name="t")

    def call(self, x):
        m = ops.reshape(ops.matmul(x, self.t), (-1, self.num_kernels, self.kernel_dim))
        diff = ops.sum(ops.abs(ops.expand_dims(m, 0) - ops.expand_dims(m, 1)), axis=-1)  # [N, N, B]
        o = ops.sum(ops.exp(-diff), axis=1) - 1.0  # drop the j = i term (exp(0) = 1)
        return ops.concatenate([x, o], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.num_kernels)

    def get_config(self):
        return {**super().get_config(), "num_kernels": self.num_kernels, "kernel_dim": self.kernel_dim}
