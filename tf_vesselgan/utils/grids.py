"""Pictures of image + label pairs (TensorBoard, sample PNGs, reports, privacy figures)."""
from __future__ import annotations

import numpy as np


def pair_grid(pairs: np.ndarray, columns: int = 8) -> np.ndarray:
    """RGB grid of image+label pairs: grey image in [-1,1] with the label (>0.5) in red.

    Args:
        pairs: [N, H, W, 2], image channel in [-1, 1], label channel in [0, 1] or tanh range.
    Returns:
        uint8 [rows*H, columns*W, 3].
    """
    n, h, w, _ = pairs.shape
    rows = -(-n // columns)
    grey = np.clip((pairs[..., 0] + 1) / 2, 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    lab = pairs[..., 1] > 0.5
    rgb[lab] = 0.45 * rgb[lab] + 0.55 * np.array([1.0, 0.1, 0.1])
    grid = np.zeros((rows * h, columns * w, 3), np.float32)
    for i in range(n):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = rgb[i]
    return (grid * 255).astype(np.uint8)
