"""NIfTI input: find cases in either supported layout, load them, validate them.

Every problem found here is a `DataError` naming the case and the problem, raised
before any output is written.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from tf_vesselgan.errors import DataError

_NII = re.compile(r"^(?P<id>.+?)\.nii(\.gz)?$")


@dataclass(frozen=True)
class Case:
    case_id: str
    image: Path
    label: Path
    mask: Path | None = None


@dataclass(frozen=True)
class Volume:
    """One loaded case: float32 image, {0,1} uint8 label, optional bool mask."""

    case_id: str
    image: np.ndarray
    label: np.ndarray
    mask: np.ndarray | None
    affine: np.ndarray
    spacing: tuple[float, float, float]


def _index(folder: Path, strip_channel: bool = False) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        m = _NII.match(p.name)
        if not m or p.name.startswith("."):
            continue
        cid = m.group("id")
        if strip_channel:
            cm = re.match(r"^(.+)_(\d{4})$", cid)
            if not cm:
                raise DataError(f"file {p.name} in {folder.name}/ is not named <case>_0000.nii.gz")
            if cm.group(2) != "0000":
                continue  # only the first channel is used
            cid = cm.group(1)
        if cid in found:
            raise DataError(f"case '{cid}': duplicate case id ({found[cid].name} and {p.name} in {folder.name}/)")
        found[cid] = p
    return found


def check_nnunet_dataset_json(path: Path) -> dict:
    """The parts of an nnU-Net v2 dataset.json this package relies on: one image channel,
    labels with background 0 and a vessel label, and a NIfTI file ending.

    Raises: DataError naming the first problem.
    """
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DataError(f"{path} is not valid JSON") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: top level must be an object, got {type(meta).__name__}")
    for key in ("channel_names", "labels", "file_ending"):
        if key not in meta:
            raise DataError(f"{path}: missing '{key}' (nnU-Net v2 dataset.json)")
    channels, labels, ending = meta["channel_names"], meta["labels"], meta["file_ending"]
    if not isinstance(channels, dict) or len(channels) != 1:
        raise DataError(f"{path}: 'channel_names' must name exactly one channel (the TOF-MRA image), "
                        f"got {channels!r}"[:200])
    if not isinstance(labels, dict) or labels.get("background") != 0 or len(labels) < 2 \
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels.values()):
        raise DataError(f"{path}: 'labels' must map names to integers with background 0 and a vessel label, "
                        f"got {labels!r}"[:200])
    if ending not in (".nii.gz", ".nii"):
        raise DataError(f"{path}: 'file_ending' must be .nii.gz or .nii (NIfTI), got {ending!r}")
    return meta


def discover_cases(data_dir: str | Path) -> tuple[list[Case], str]:
    """Finds the cases of a data folder.

    Layouts: `images/<case>.nii[.gz]` + `labels/<case>...` (+ optional `masks/`), or
    nnU-Net v2 (`dataset.json`, `imagesTr/<case>_0000.nii.gz`, `labelsTr/<case>...`).

    Returns:
        (cases sorted by id, layout name "folders" or "nnunet").

    Raises:
        DataError: missing/empty folder, unpaired files, duplicate case ids.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    if (root / "dataset.json").is_file() or (root / "imagesTr").is_dir():
        layout, img_dir, lab_dir, strip = "nnunet", root / "imagesTr", root / "labelsTr", True
        if (root / "dataset.json").is_file():
            check_nnunet_dataset_json(root / "dataset.json")
    else:
        layout, img_dir, lab_dir, strip = "folders", root / "images", root / "labels", False
    if not img_dir.is_dir():
        raise DataError(f"data folder {root} is empty or has no {img_dir.name}/ folder")
    if not lab_dir.is_dir():
        raise DataError(f"data folder {root} has no {lab_dir.name}/ folder")
    images = _index(img_dir, strip_channel=strip)
    labels = _index(lab_dir)
    masks = _index(root / "masks") if layout == "folders" and (root / "masks").is_dir() else {}
    if not images and not labels:
        raise DataError(f"data folder {root} contains no NIfTI cases")
    for cid in sorted(images):
        if cid not in labels:
            raise DataError(f"case '{cid}': image without label (no {lab_dir.name}/{cid}.nii[.gz])")
    for cid in sorted(labels):
        if cid not in images:
            raise DataError(f"case '{cid}': label without image (no {img_dir.name}/{cid}... file)")
    for cid in sorted(masks):
        if cid not in images:
            raise DataError(f"case '{cid}': mask without image")
    cases = [Case(cid, images[cid], labels[cid], masks.get(cid)) for cid in sorted(images)]
    return cases, layout


def _read(case_id: str, path: Path, what: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DataError(f"case '{case_id}': cannot read {what} {path.name} ({reason})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"case '{case_id}': {what} {path.name} is {data.ndim}D with shape {data.shape}; a 3D volume is required")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return data, img.affine, zooms


def load_volume(case: Case, label_map: dict[int, int] | None = None,
                min_xy: int = 0, need_vessels: int = 0) -> Volume:
    """Loads and validates one case.

    Args:
        case: the case's files.
        label_map: raw label value -> {0,1}; None means labels must already be {0,1}.
        min_xy: smallest allowed in-plane size (the patch size).
        need_vessels: vessel voxels the case must have (vessel-centred patches asked).

    Raises:
        DataError: unreadable file, wrong dimensionality, image/label shape or affine
            mismatch, NaN/Inf, labels outside {0,1}, too small, too few vessel voxels.
    """
    cid = case.case_id
    image, affine, spacing = _read(cid, case.image, "image")
    label, l_affine, _ = _read(cid, case.label, "label")
    if image.shape != label.shape:
        raise DataError(f"case '{cid}': image shape {image.shape} != label shape {label.shape}")
    if not np.allclose(affine, l_affine, atol=1e-3):
        raise DataError(f"case '{cid}': image and label affines differ")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise DataError(f"case '{cid}': image contains NaN or Inf voxels")
    if image.size and image.min() == image.max():
        raise DataError(f"case '{cid}': image is constant (every voxel {image.flat[0]:g}); nothing to mask, "
                        "learn or segment")
    if np.issubdtype(label.dtype, np.floating):
        if not np.isfinite(label).all():
            raise DataError(f"case '{cid}': label contains NaN or Inf voxels")
        if not np.array_equal(label, np.round(label)):
            raise DataError(f"case '{cid}': label has non-integer values")
    label = _binary_label(cid, label, label_map)
    if min(image.shape[:2]) < min_xy:
        raise DataError(f"case '{cid}': volume {image.shape} is smaller than the {min_xy}x{min_xy} patch")
    n_vessel = int(np.count_nonzero(label))
    if need_vessels and n_vessel == 0:
        raise DataError(f"case '{cid}': label has no vessel voxel but vessel-centred patches are requested")
    if n_vessel < need_vessels:
        raise DataError(f"case '{cid}': only {n_vessel} vessel voxels, fewer than the {need_vessels} vessel-centred patches requested")
    mask = None
    if case.mask is not None:
        m, _, _ = _read(cid, case.mask, "mask")
        if m.shape != image.shape:
            raise DataError(f"case '{cid}': mask shape {m.shape} != image shape {image.shape}")
        mask = np.asarray(m) > 0
        if not mask.any():
            raise DataError(f"case '{cid}': brain mask is empty")
    return Volume(cid, image, label, mask, affine, spacing)


def _binary_label(cid: str, label: np.ndarray, label_map: dict[int, int] | None) -> np.ndarray:
    """The label as uint8 {0, 1}: through `label_map`, or checked to be {0, 1} already."""
    values = np.unique(label).astype(np.int64)
    if label_map is None:
        bad = [int(v) for v in values if v not in (0, 1)]
        if bad:
            raise DataError(f"case '{cid}': label values must be 0/1, found {bad[0]} (map them with data.label_map)")
        return label.astype(np.uint8)
    unmapped = [int(v) for v in values if int(v) not in label_map]
    if unmapped:
        raise DataError(f"case '{cid}': label value {unmapped[0]} is not in the config's label_map")
    lut = np.zeros(int(values.max()) - int(values.min()) + 1, dtype=np.uint8)
    for v in values:
        lut[int(v) - int(values.min())] = label_map[int(v)]
    return lut[label.astype(np.int64) - int(values.min())]


def save_nifti(path: str | Path, data: np.ndarray, affine: np.ndarray, header=None) -> None:
    """Writes a NIfTI file with scanner-space sform/qform (opens in ITK-SNAP)."""
    img = nib.Nifti1Image(data, affine, header=header)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
