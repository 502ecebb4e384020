"""Axial 2D patch extraction: vessel-centred and random (brain-mask) centres.

As in Kossen et al. and their code: per patient N patches centred on label voxels
and N centred on random brain voxels, no centre used twice, borders padded.
"""
from __future__ import annotations

import zlib

import numpy as np
from scipy import ndimage

VESSEL, RANDOM = 0, 1


def auto_brain_mask(image: np.ndarray) -> np.ndarray:
    """Foreground (head) mask when no brain mask is given.

    Otsu threshold of a smoothed, 2x-downsampled volume, holes filled, largest
    connected component kept, upsampled back (the whole volume when that leaves
    under 5 %). For a skull-on scan this is the head,
    not the brain; give `masks/` for a true brain mask.
    """
    small = ndimage.gaussian_filter(image[::2, ::2, ::2].astype(np.float32), 1.0)
    hist, edges = np.histogram(small, bins=256)
    p = hist / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1 - omega))
    t = edges[int(np.nanargmax(between)) + 1]
    fg = small > t
    fg = ndimage.binary_closing(fg, iterations=2)
    fg = ndimage.binary_fill_holes(fg)
    lab, n = ndimage.label(fg)
    if n > 1:
        sizes = ndimage.sum_labels(fg, lab, index=np.arange(1, n + 1))
        fg = lab == (1 + int(np.argmax(sizes)))
    if fg.mean() < 0.05:  # no clear background/foreground split: use the whole volume
        fg = np.ones_like(fg)
    full = fg.repeat(2, 0).repeat(2, 1).repeat(2, 2)[: image.shape[0], : image.shape[1], : image.shape[2]]
    pad = [(0, s - f) for s, f in zip(image.shape, full.shape)]
    return np.pad(full, pad, mode="edge") if any(p[1] for p in pad) else full


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """Per-case generator: depends on the seed and the case id, not on its position."""
    return np.random.default_rng([seed, zlib.crc32(case_id.encode())])


def sample_centres(label: np.ndarray, mask: np.ndarray, n_vessel: int, n_random: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draws unique patch centres (flat indices) and their kinds.

    Vessel centres come from label voxels; random centres from mask voxels that are
    not already a vessel centre. Raises ValueError when there are too few voxels.
    """
    vessel_idx = np.flatnonzero(label)
    if n_vessel > vessel_idx.size:
        raise ValueError(f"only {vessel_idx.size} vessel voxels for {n_vessel} vessel-centred patches")
    chosen_v = vessel_idx[rng.choice(vessel_idx.size, size=n_vessel, replace=False)] if n_vessel else np.empty(0, np.int64)
    mask_idx = np.flatnonzero(mask)
    if n_random:
        if mask_idx.size > 4 * (n_random + n_vessel):
            # draw enough extra that dropping the vessel centres leaves n_random
            cand = mask_idx[rng.choice(mask_idx.size, size=n_random + n_vessel, replace=False)]
            cand = cand[~np.isin(cand, chosen_v)]
        else:
            free = np.setdiff1d(mask_idx, chosen_v)
            cand = free[rng.permutation(free.size)]
        if cand.size < n_random:
            raise ValueError(f"only {cand.size} free brain-mask voxels for {n_random} random patches")
        chosen_r = cand[:n_random]
    else:
        chosen_r = np.empty(0, np.int64)
    centres = np.concatenate([chosen_v, chosen_r]).astype(np.int64)
    kinds = np.concatenate([np.full(n_vessel, VESSEL), np.full(n_random, RANDOM)]).astype(np.int64)
    return centres, kinds


def extract_patches(image: np.ndarray, label: np.ndarray, centres: np.ndarray, size: int):
    """Cuts axial (x-y) patches of `size` centred on flat-index `centres`.

    The volume is padded in-plane by size//2 with its minimum (label 0), so a patch at
    the border keeps its centre on the requested voxel: the centre is pixel
    (size//2, size//2) of the patch.

    Returns:
        (images float32 [n, size, size], labels uint8 [n, size, size]).
    """
    h = size // 2
    pad = ((h, size - h), (h, size - h), (0, 0))
    img = np.pad(image, pad, mode="constant", constant_values=float(image.min()))
    lab = np.pad(label, pad, mode="constant", constant_values=0)
    x, y, z = np.unravel_index(centres, image.shape)
    out_i = np.empty((len(centres), size, size), np.float32)
    out_l = np.empty((len(centres), size, size), np.uint8)
    for k, (cx, cy, cz) in enumerate(zip(x, y, z)):
        out_i[k] = img[cx:cx + size, cy:cy + size, cz]
        out_l[k] = lab[cx:cx + size, cy:cy + size, cz]
    return out_i, out_l
