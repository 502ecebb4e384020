"""Exponential moving average of the generator's weights, used for sampling.

Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training": averaged
generator weights give better samples than the last iterate at no training cost. The
average is a second generator whose trainable weights follow
w_ema ← d·w_ema + (1 − d)·w after every generator update, with the warm-up
d = min(decay, (1 + t)/(10 + t)) of tf.train.ExponentialMovingAverage(num_updates=t) so
early averages do not hold on to the random initialisation.
"""
from __future__ import annotations

import keras
import numpy as np


def ema_decay_at(decay: float, step: int) -> float:
    return min(decay, (1.0 + step) / (10.0 + step))


class GeneratorEMA(keras.callbacks.Callback):
    """Updates `ema_generator`'s trainable weights after every train step (eagerly, so it
    works the same under every distribution strategy; ≈ 1 ms per step at demo widths)."""

    def __init__(self, generator: keras.Model, ema_generator: keras.Model, decay: float, step_fn):
        super().__init__()
        self.pairs = list(zip(ema_generator.trainable_variables, generator.trainable_variables))
        self.decay = decay
        self.step_fn = step_fn  # → number of generator updates so far

    def on_train_batch_end(self, batch, logs=None):
        d = ema_decay_at(self.decay, int(self.step_fn()))
        for avg, w in self.pairs:
            avg.assign(d * avg + (1.0 - d) * w)


def ema_reference(weights: list[np.ndarray], decay: float, start: int = 0) -> np.ndarray:
    """Brute-force EMA of a sequence of weight arrays (tests): the first array is the
    initial average, each later one an update at step start+1, start+2, ..."""
    avg = np.asarray(weights[0], np.float64)
    for t, w in enumerate(weights[1:], start=start + 1):
        d = ema_decay_at(decay, t)
        avg = d * avg + (1 - d) * np.asarray(w, np.float64)
    return avg
