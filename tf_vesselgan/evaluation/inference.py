"""Whole-volume inference: axial slices, overlapping 2D tiles, restricted to the brain mask.

Tiles of the training patch size are cut with overlap (stride = half a patch by
default), normalised exactly as in training, predicted in batches, and averaged where
they overlap — uniformly, or with a Gaussian weight that trusts tile centres more than
tile borders (as nnU-Net does). Optional flip test-time augmentation averages each tile's
prediction over its four flips; optional post-processing removes connected components
smaller than a voxel count. Outputs keep the source affine and header geometry
(ITK-SNAP overlays).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_vesselgan.data.normalization import normalize


def _origins(n: int, size: int, stride: int) -> list[int]:
    if n <= size:
        return [0]
    o = list(range(0, n - size + 1, stride))
    if o[-1] != n - size:
        o.append(n - size)
    return o


def tile_weight(size: int, weighting: str) -> np.ndarray:
    """Per-pixel weight of a tile: ones, or a Gaussian with σ = size/8 around the centre
    (nnU-Net's choice), scaled to a maximum of 1 and floored so borders still count."""
    if weighting == "uniform":
        return np.ones((size, size), np.float32)
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r ** 2) / (2.0 * (size / 8.0) ** 2))
    w = np.outer(g, g)
    w /= w.max()
    return np.maximum(w, 1e-3).astype(np.float32)


def _predict(infer, tiles: np.ndarray, flips: bool) -> np.ndarray:
    x = tf.constant(tiles[..., None])
    if not flips:
        return infer(x).numpy()[..., 0]
    out = infer(x).numpy()[..., 0]
    out += infer(x[:, ::-1]).numpy()[:, ::-1, :, 0]
    out += infer(x[:, :, ::-1]).numpy()[:, :, ::-1, 0]
    out += infer(x[:, ::-1, ::-1]).numpy()[:, ::-1, ::-1, 0]
    return out / 4.0


def remove_small_components(seg: np.ndarray, min_voxels: int) -> np.ndarray:
    """The binary segmentation without 3D connected components (26-connectivity) of fewer
    than `min_voxels` voxels; 0 keeps everything."""
    if min_voxels <= 0 or not seg.any():
        return seg
    from scipy import ndimage

    labels, n = ndimage.label(seg, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[labels]


def segment_volume(model, image: np.ndarray, mask: np.ndarray, status: dict, stride: int = 48,
                   batch: int = 64, weighting: str = "uniform", flips: bool = False) -> np.ndarray:
    """Vessel probability for every voxel (0 outside the mask)."""
    size = int(status["patch_size"])
    stride = min(stride, size)  # a stride beyond the tile would leave voxels no tile covers
    mode, mean, std = status["normalization"], float(status["mean"]), float(status["std"])
    pad_x, pad_y = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    img = np.pad(image, ((0, pad_x), (0, pad_y), (0, 0)), constant_values=float(image.min()))
    msk = np.pad(mask, ((0, pad_x), (0, pad_y), (0, 0)))
    prob = np.zeros(img.shape, np.float32)
    count = np.zeros(img.shape, np.float32)
    xs, ys = _origins(img.shape[0], size, stride), _origins(img.shape[1], size, stride)
    jobs = [(x, y, z) for z in range(img.shape[2]) if msk[..., z].any()
            for x in xs for y in ys if msk[x:x + size, y:y + size, z].any()]
    weight = tile_weight(size, weighting)
    infer = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        tiles = np.stack([img[x:x + size, y:y + size, z] for x, y, z in chunk]).astype(np.float32)
        tiles = normalize(tiles, mode, mean, std)
        out = _predict(infer, tiles, flips)
        for (x, y, z), p in zip(chunk, out):
            prob[x:x + size, y:y + size, z] += p * weight
            count[x:x + size, y:y + size, z] += weight
    prob = np.divide(prob, count, out=np.zeros_like(prob), where=count > 0) * msk
    return prob[: image.shape[0], : image.shape[1]]


def segment_case(model, image: np.ndarray, mask: np.ndarray, status: dict, unet_cfg) -> np.ndarray:
    """`segment_volume` with the inference options of a config's `unet` section."""
    return segment_volume(model, image, mask, status, unet_cfg.inference_stride, unet_cfg.inference_batch,
                          unet_cfg.tile_weighting, unet_cfg.tta_flips)


# -- the same rules in TensorFlow, for the exported U-net signature --------------------
def _origins_tf(n, size: int, stride: int):
    o = tf.range(0, n - size + 1, stride)
    return tf.cond(o[-1] < n - size, lambda: tf.concat([o, [n - size]], 0), lambda: o)


def segment_slices_tf(model, images, size: int, stride: int, mode: str, mean: float, std: float,
                      weighting: str = "uniform", flips: bool = False, chunk: int = 64):
    """What `segment_volume` computes for a stack of slices [B, H, W, 1] with a full mask
    (every tile predicted): the same tile origins, per-tile normalisation, weights and
    flips; slices smaller than a tile are padded with the stack's minimum."""
    stride = min(stride, size)
    h, w = tf.shape(images)[1], tf.shape(images)[2]
    pad_h, pad_w = tf.maximum(size - h, 0), tf.maximum(size - w, 0)
    img = tf.pad(images[..., 0], [[0, 0], [0, pad_h], [0, pad_w]], constant_values=tf.reduce_min(images))
    big_h, big_w, b = h + pad_h, w + pad_w, tf.shape(images)[0]
    gx, gy = tf.meshgrid(_origins_tf(big_h, size, stride), _origins_tf(big_w, size, stride), indexing="ij")
    gx, gy = tf.reshape(gx, [-1]), tf.reshape(gy, [-1])
    k = tf.shape(gx)[0]
    r = tf.range(size)
    rows, cols = gx[:, None] + r[None, :], gy[:, None] + r[None, :]  # [K, size]
    t = tf.transpose(tf.gather(img, rows, axis=1), [1, 0, 2, 3])  # [K, B, size, W]
    tiles = tf.gather(t, cols, axis=3, batch_dims=1)  # [K, B, size, size]
    x = normalize(tf.reshape(tiles, [-1, size, size, 1]), mode, mean, std, axes=(1, 2))
    n = tf.shape(x)[0]
    pad_n = (-n) % chunk
    x = tf.pad(x, [[0, pad_n], [0, 0], [0, 0], [0, 0]])

    def predict(c):
        p = model(c, training=False)
        if flips:
            p += tf.reverse(model(tf.reverse(c, [1]), training=False), [1])
            p += tf.reverse(model(tf.reverse(c, [2]), training=False), [2])
            p += tf.reverse(model(tf.reverse(c, [1, 2]), training=False), [1, 2])
            p /= 4.0
        return p

    prob = tf.map_fn(predict, tf.reshape(x, [-1, chunk, size, size, 1]),
                     fn_output_signature=tf.TensorSpec([chunk, size, size, 1], tf.float32))
    prob = tf.reshape(prob, [-1, size, size])[:n]
    weight = tf.constant(tile_weight(size, weighting))
    values = tf.transpose(tf.reshape(prob, [k, b, size, size]), [0, 2, 3, 1]) * weight[None, :, :, None]
    idx = tf.stack(tf.meshgrid(r, r, indexing="ij"), axis=-1)[None] + tf.stack([gx, gy], -1)[:, None, None, :]
    idx = tf.reshape(idx, [-1, 2])
    acc = tf.tensor_scatter_nd_add(tf.zeros([big_h, big_w, b]), idx, tf.reshape(values, [-1, b]))
    cnt = tf.tensor_scatter_nd_add(tf.zeros([big_h, big_w]), idx,
                                   tf.reshape(tf.tile(weight[None], [k, 1, 1]), [-1]))
    out = acc / cnt[..., None]
    return tf.transpose(out, [2, 0, 1])[:, :h, :w, None]
