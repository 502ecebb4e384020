"""Soft-Dice loss and a thresholded Dice metric for U-net training."""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_vesselgan")
def soft_dice_loss(y_true, y_pred, smooth: float = 1.0):
    """1 − (2Σpy + s)/(Σp + Σy + s) over the whole batch (Milletari et al. 2016)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    inter = ops.sum(y_true * y_pred)
    return 1.0 - (2.0 * inter + smooth) / (ops.sum(y_true) + ops.sum(y_pred) + smooth)


@keras.saving.register_keras_serializable(package="tf_vesselgan")
def dice_metric(y_true, y_pred):
    """Dice of the 0.5-thresholded prediction over the batch (1 when both are empty)."""
    p = ops.cast(y_pred > 0.5, "float32")
    t = ops.cast(y_true, "float32")
    denom = ops.sum(p) + ops.sum(t)
    return ops.where(denom > 0, 2.0 * ops.sum(p * t) / ops.maximum(denom, 1.0), 1.0)


@keras.saving.register_keras_serializable(package="tf_vesselgan")
def dice_bce_loss(y_true, y_pred):
    """Soft Dice plus mean binary cross-entropy (as nnU-Net trains): the cross-entropy term
    keeps the probabilities calibrated per voxel, the Dice term keeps the rare class."""
    y_true = ops.cast(y_true, y_pred.dtype)
    return soft_dice_loss(y_true, y_pred) + ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))


@keras.saving.register_keras_serializable(package="tf_vesselgan")
def bce_loss(y_true, y_pred):
    """Mean binary cross-entropy over every voxel."""
    return ops.mean(keras.losses.binary_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred))


LOSSES = {"dice": soft_dice_loss, "dice_bce": dice_bce_loss, "bce": bce_loss}
