"""Built-in data set: TOF-MRA-like phantom volumes with exact vessel labels.

Branching, tapering, tortuous vessel trees with bright inflow signal over textured
tissue, a bias field, Rician noise and a bright skull/fat ring, so that a threshold
alone does not segment the vessels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

DEFAULT_SPACING = (0.5, 0.5, 0.7)
DEFAULT_SHAPE = (128, 128, 64)
DEFAULT_BLOBS = (70, 100)  # bright unlabelled blobs per case: [low, high)
DEFAULT_FAT = 0.78  # mean intensity of the fat/skull ring (brain tissue about 0.32)
DEFAULT_INFLOW_MM = 60.0  # flow path over which a vessel's inflow signal falls to 1/e of its saturable part


def _smooth_noise(rng, shape, sigma):
    n = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return n / (n.std() + 1e-8)


def _random_turn(rng, direction, angle):
    """Rotates `direction` by `angle` radians about a random perpendicular axis."""
    perp = rng.standard_normal(3)
    perp -= perp.dot(direction) * direction
    perp /= np.linalg.norm(perp) + 1e-12
    return np.cos(angle) * direction + np.sin(angle) * perp


def _grow_trees(rng, inside, size_mm, voxel_mm, max_points=40_000):
    """Centre-line points (x, y, z in mm), radius (mm) and path length of vessel trees."""
    pts, radii, paths = [], [], []
    step = 0.3  # mm, well below the smallest diameter so tubes are continuous
    cx, cy = size_mm[0] / 2, size_mm[1] / 2
    roots = []
    for sx in (-0.22, 0.0, 0.22):  # two carotid-like and one basilar-like root
        start = np.array([cx + sx * size_mm[0], cy + rng.uniform(-0.1, 0.1) * size_mm[1], 0.12 * size_mm[2]])
        d = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 1.0])
        roots.append((start, d / np.linalg.norm(d), rng.uniform(2.5, 3.0) * voxel_mm, 0.0))
    stack = roots
    while stack and len(pts) < max_points:
        pos, d, r, path = stack.pop()
        curl = rng.normal(0, 0.12, 3)
        while r >= 0.5 * voxel_mm and len(pts) < max_points:
            if not inside(pos):
                d = -d + rng.normal(0, 0.3, 3)  # bounce off the brain surface
                d /= np.linalg.norm(d)
                pos = pos + d * step
                if not inside(pos):
                    break
            pts.append(pos.copy())
            radii.append(r)
            paths.append(path)
            # tortuosity: a slowly varying curl plus jitter
            curl = 0.95 * curl + rng.normal(0, 0.03, 3)
            d = d + curl * step + rng.normal(0, 0.02, 3)
            d /= np.linalg.norm(d)
            pos = pos + d * step
            path += step
            r *= 0.9985  # taper
            if rng.random() < 0.012:
                child_r = r * rng.uniform(0.55, 0.8)
                child_d = _random_turn(rng, d, rng.uniform(0.5, 1.2))
                stack.append((pos.copy(), child_d, child_r, path))
                r *= 0.9
    return np.array(pts), np.array(radii), np.array(paths)


def make_phantom(shape=DEFAULT_SHAPE, spacing=DEFAULT_SPACING, seed=0, blobs=DEFAULT_BLOBS,
                 inflow_mm=DEFAULT_INFLOW_MM, fat=DEFAULT_FAT):
    """Makes one phantom case; `blobs` = [low, high) of its bright unlabelled blob count,
    `inflow_mm` the flow path over which the vessels' inflow signal saturates (longer:
    distal vessels stay brighter than the fat ring and the blobs, as in the ICBM scans),
    `fat` the fat ring's mean intensity (brain tissue about 0.32).

    Returns:
        (image float32, label uint8 {0,1}, brain mask uint8, affine 4x4).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    sp = np.asarray(spacing, dtype=np.float64)
    size_mm = np.asarray(shape) * sp
    grid = np.meshgrid(*[(np.arange(n) + 0.5) / n - 0.5 for n in shape], indexing="ij")
    # head/brain ellipsoids in normalised coordinates, slightly jittered per case
    ax = rng.uniform(0.92, 1.0, 3)
    image, brain = _head(rng, grid, ax, shape, fat)

    def inside(p):
        q = p / size_mm - 0.5
        return ((q[0] / (0.47 * ax[0])) ** 2 + (q[1] / (0.47 * ax[1])) ** 2 + (q[2] / (0.62 * ax[2])) ** 2) < 0.80 ** 2

    image, label = _vessels(rng, image, inside, size_mm, sp, inflow_mm)
    _bright_structures(rng, image, inside, sp, blobs)
    image = _acquisition(rng, image, grid)
    affine = np.diag([*sp, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2 * sp
    return image, label.astype(np.uint8), brain.astype(np.uint8), affine


def _head(rng, grid, ax, shape, fat_mean=DEFAULT_FAT) -> tuple[np.ndarray, np.ndarray]:
    """(image of tissue, fat ring and scalp, brain mask) of the jittered head ellipsoids."""
    rho = np.sqrt((grid[0] / (0.47 * ax[0])) ** 2 + (grid[1] / (0.47 * ax[1])) ** 2 + (grid[2] / (0.62 * ax[2])) ** 2)
    head = rho < 1.0
    brain = rho < 0.86
    ring = head & (rho > 0.90)
    tissue = 0.32 + 0.035 * _smooth_noise(rng, shape, 2.0) + 0.02 * _smooth_noise(rng, shape, 0.8)
    tissue += 0.06 * (_smooth_noise(rng, shape, 5.0) > 0.4)  # grey/white-matter-like patches
    ripple = _smooth_noise(rng, shape, 1.5)
    # the default keeps its original expression, so default phantoms stay the same voxel for
    # voxel (the scaled one differs from it by rounding); another mean scales the ripple along
    fat = 0.78 + 0.12 * ripple if fat_mean == DEFAULT_FAT else fat_mean * (1 + 0.12 / 0.78 * ripple)
    image = np.where(brain, tissue, 0.0)
    image = np.where(ring, fat, image)
    image = np.where(head & ~brain & ~ring, 0.15 + 0.03 * _smooth_noise(rng, shape, 1.0), image).astype(np.float32)
    return image, brain


def _vessels(rng, image, inside, size_mm, sp, inflow_mm=DEFAULT_INFLOW_MM) -> tuple[np.ndarray, np.ndarray]:
    """Grows vessel trees and paints them with partial volume and inflow saturation;
    returns (image, label)."""
    shape = image.shape
    pts, radii, paths = _grow_trees(rng, inside, size_mm, float(sp[0]))
    label = np.zeros(shape, dtype=bool)
    signal = np.zeros(shape, dtype=np.float32)
    brightness = np.zeros(shape, dtype=np.float32)
    soft = 0.5 * float(sp[0])  # partial-volume ramp width, mm
    for p, r, path in zip(pts, radii, paths):
        lo = np.maximum(np.floor((p - r - soft) / sp - 0.5).astype(int), 0)
        hi = np.minimum(np.ceil((p + r + soft) / sp - 0.5).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        xs, ys, zs = [(np.arange(lo[i], hi[i]) + 0.5) * sp[i] - p[i] for i in range(3)]
        d = np.sqrt(xs[:, None, None] ** 2 + ys[None, :, None] ** 2 + zs[None, None, :] ** 2)
        box = tuple(slice(lo[i], hi[i]) for i in range(3))
        label[box] |= d < r
        s = np.clip((r - d) / soft + 0.5, 0.0, 1.0).astype(np.float32)
        signal[box] = np.maximum(signal[box], s)
        inflow = 0.25 + 0.75 * np.exp(-path / inflow_mm)  # saturation along the flow path
        brightness[box] = np.where(s > 0, np.maximum(brightness[box], inflow), brightness[box])
    vessel_intensity = 0.45 + 0.6 * brightness
    return image * (1 - signal) + vessel_intensity * signal, label


def _bright_structures(rng, image, inside, sp, blobs=DEFAULT_BLOBS) -> None:
    """Bright, unlabelled non-vessel structures inside the brain (fat, calcification,
    T1-bright tissue in TOF): blobs as bright as distal vessels, painted in place."""
    shape = image.shape
    for _ in range(int(rng.integers(*blobs))):
        c = np.array([rng.uniform(0.25, 0.75) * n for n in shape])
        if not inside(c * sp):
            continue
        radii = rng.uniform(1.0, 3.5, 3) * np.array([1.0, 1.0, sp[0] / sp[2]])
        lo = np.maximum(np.floor(c - radii - 1).astype(int), 0)
        hi = np.minimum(np.ceil(c + radii + 2).astype(int), shape)
        box = tuple(slice(lo[i], hi[i]) for i in range(3))
        q = [(np.arange(lo[i], hi[i]) + 0.5 - c[i]) / radii[i] for i in range(3)]
        r2 = q[0][:, None, None] ** 2 + q[1][None, :, None] ** 2 + q[2][None, None, :] ** 2
        blob = np.clip(1.5 - r2, 0, 1).astype(np.float32)
        image[box] = np.maximum(image[box], blob * rng.uniform(0.7, 1.05))


def _acquisition(rng, image, grid) -> np.ndarray:
    """A multiplicative bias field (random low-order polynomial) and Rician noise (the
    magnitude of a complex signal with Gaussian noise in both channels), as int16."""
    c = rng.normal(0, 0.25, 6)
    bias = 1 + c[0] * grid[0] + c[1] * grid[1] + c[2] * grid[2] + c[3] * grid[0] * grid[1] + c[4] * grid[0] ** 2 + c[5] * grid[2] ** 2
    image = image * np.clip(bias, 0.6, 1.4)
    sigma = 0.08
    noise = (sigma * rng.standard_normal(image.shape), sigma * rng.standard_normal(image.shape))
    image = np.sqrt((image + noise[0]) ** 2 + noise[1] ** 2)
    return np.round(np.clip(image, 0, None) * 1000).astype(np.int16)


def phantom_case_ids(cases: int) -> list[str]:
    """The case ids `write_phantom_dataset` gives `cases` phantom cases."""
    return [f"phantom_{i:03d}" for i in range(cases)]


def write_phantom_dataset(out: str | Path, cases: int = 6, shape=DEFAULT_SHAPE, seed: int = 0,
                          spacing=DEFAULT_SPACING, progress: bool = True, blobs=DEFAULT_BLOBS,
                          inflow_mm=DEFAULT_INFLOW_MM, fat=DEFAULT_FAT) -> list[str]:
    """Writes `out/images|labels|masks/<case>.nii.gz` for `cases` phantom cases."""
    from tf_vesselgan.data.nifti import save_nifti
    from tf_vesselgan.utils.progress import progress_bar

    out = Path(out)
    ids = []
    for sub in ("images", "labels", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(seed).spawn(cases)
    names = phantom_case_ids(cases)
    for i in progress_bar(range(cases), desc="phantom", unit="case", enable=progress):
        cid = names[i]
        image, label, mask, affine = make_phantom(shape, spacing, seeds[i], blobs, inflow_mm, fat)
        save_nifti(out / "images" / f"{cid}.nii.gz", image, affine)
        save_nifti(out / "labels" / f"{cid}.nii.gz", label, affine)
        save_nifti(out / "masks" / f"{cid}.nii.gz", mask, affine)
        ids.append(cid)
    return ids
