"""`vesselgan sample`: synthetic image+label pairs from a trained generator.

Streams in batches (memory flat in N). Noise for batch k is drawn with the stateless
seed (seed, k), so the same seed gives the same samples. Outputs carry no source case
id, file name, affine or header text: only the generator, N, seed and threshold.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_vesselgan.errors import UserError
from tf_vesselgan.utils.progress import atomic_output_dir, progress_bar

SAMPLE_BATCH = 256


def block_noise(seed: int, k: int, latent: int, batch: int = SAMPLE_BATCH):
    """The noise of block k of `vesselgan sample --seed seed`: rows k·batch … (k+1)·batch − 1."""
    return tf.random.stateless_normal([batch, latent], seed=[seed, k])


def generate(generator, n: int, seed: int, threshold: float = 0.8, batch: int = SAMPLE_BATCH):
    """Yields (image float32 [b,P,P] in [-1,1], label uint8 {0,1} [b,P,P]) batches."""
    latent = generator.input_shape[-1]
    infer = tf.function(lambda z: generator(z, training=False), reduce_retracing=True)
    for k, start in enumerate(range(0, n, batch)):
        b = min(batch, n - start)
        z = block_noise(seed, k, latent, batch)[:b]
        pair = infer(z).numpy()
        yield pair[..., 0].astype(np.float32), (pair[..., 1] > threshold).astype(np.uint8)


def generate_from_export(version_dir, n: int, seed: int, batch: int = SAMPLE_BATCH):
    """Like `generate`, from an exported generator SavedModel (`vesselgan export`): the
    same noise per (seed, block), the export's baked-in label threshold.

    Returns (batches iterator, patch size, info dict with the export's threshold)."""
    path = Path(version_dir)
    if not (path / "saved_model.pb").exists():
        raise UserError(f"{path} is not an exported SavedModel version folder (no saved_model.pb)")
    try:
        model = tf.saved_model.load(str(path))
    except Exception as exc:  # a damaged export surfaces as several TF exception types
        raise UserError(f"{path}: cannot load the SavedModel ({str(exc).splitlines()[0][:120]})") from None
    fn = model.signatures.get("serving_default")
    if fn is None or "noise" not in fn.structured_input_signature[1]:
        raise UserError(f"{path} is not an exported generator (no serving_default signature taking noise)")
    latent = int(fn.structured_input_signature[1]["noise"].shape[-1])
    size = int(fn.structured_outputs["image"].shape[1])

    def batches():
        for k, start in enumerate(range(0, n, batch)):
            b = min(batch, n - start)
            out = fn(noise=block_noise(seed, k, latent, batch)[:b])
            yield out["image"].numpy()[..., 0].astype(np.float32), out["label"].numpy()[..., 0].astype(np.uint8)

    return batches(), size, {"threshold": float(model.label_threshold.numpy()) if hasattr(model, "label_threshold") else None}


def pairs_from_export(version_dir, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` pairs of an exported generator in memory: images [n, H, W] float32 and labels
    [n, H, W] uint8, the same pairs `vesselgan sample --model` writes for this seed."""
    batches = generate_from_export(version_dir, n, seed)[0]
    image, label = zip(*batches)
    return np.concatenate(image), np.concatenate(label)


def write_samples(generator, n: int, out, seed: int = 0, threshold: float = 0.8, fmt: str = "npz",
                  overwrite: bool = False, progress: bool = True, meta: dict | None = None) -> Path:
    """Writes N samples as samples.npz, NIfTI pairs, or PNG grids into folder `out`."""
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    return write_pairs(generate(generator, n, seed, threshold), n, generator.output_shape[1], out,
                       {"seed": seed, "threshold": threshold, **(meta or {})}, fmt, overwrite, progress)


def write_pairs(batches, n: int, size: int, out, info: dict, fmt: str = "npz", overwrite: bool = False,
                progress: bool = True) -> Path:
    """Writes (image [b,P,P], label uint8 [b,P,P]) batches, n pairs in all, to folder `out`
    (memory flat in n); `info` goes to samples.json next to them."""
    if fmt not in ("npz", "nifti", "png"):
        raise UserError(f"unknown format {fmt!r} (npz, nifti, png)")
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        bar = progress_bar(total=n, desc="sample", unit="pair", enable=progress)
        if fmt == "npz":
            img_mm = allocated_memmap(tmp / "image.npy", np.float32, (n, size, size))
            lab_mm = allocated_memmap(tmp / "label.npy", np.uint8, (n, size, size))
        i = 0
        for image, label in batches:
            b = len(image)
            if fmt == "npz":
                img_mm[i:i + b], lab_mm[i:i + b] = image, label
            elif fmt == "nifti":
                _write_nifti_pairs(tmp, i, image, label)
            else:
                _write_png_grid(tmp, i, image, label)
            i += b
            bar.update(b)
        bar.close()
        if i != n:
            raise UserError(f"expected {n} pairs, got {i}")
        if fmt == "npz":
            img_mm.flush()
            lab_mm.flush()
            del img_mm, lab_mm
            with zipfile.ZipFile(tmp / "samples.npz", "w", zipfile.ZIP_STORED) as zf:
                zf.write(tmp / "image.npy", "image.npy")
                zf.write(tmp / "label.npy", "label.npy")
            (tmp / "image.npy").unlink()
            (tmp / "label.npy").unlink()
        (tmp / "samples.json").write_text(json.dumps({"n": n, "format": fmt, "patch_size": size, **info}, indent=2))
    return Path(out)


def allocated_memmap(path: Path, dtype, shape) -> np.memmap:
    """A writable .npy memmap whose blocks are reserved on disk first: on a full disk this
    is an OSError (ENOSPC) now, not a SIGBUS when a page is written later."""
    mm = np.lib.format.open_memmap(path, "w+", dtype, shape)
    try:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.path.getsize(path))
    except OSError as exc:
        del mm
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    return mm


def _write_nifti_pairs(folder: Path, start: int, image, label) -> None:
    import nibabel as nib

    for k in range(len(image)):
        for name, arr in (("image", image[k]), ("label", label[k])):
            img = nib.Nifti1Image(arr[:, :, None], np.eye(4))  # identity affine: no source geometry
            img.header["descrip"] = b""
            nib.save(img, str(folder / f"sample_{start + k:06d}_{name}.nii.gz"))


def _write_png_grid(folder: Path, start: int, image, label) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tf_vesselgan.utils.grids import pair_grid

    grid = pair_grid(np.stack([image, label.astype(np.float32)], axis=-1), columns=16)
    plt.imsave(folder / f"samples_{start:06d}.png", grid)


def load_samples(path) -> tuple[np.ndarray, np.ndarray]:
    """Reads samples.npz (a file or its folder) → (image, label)."""
    p = Path(path)
    if p.is_dir():
        p = p / "samples.npz"
    if not p.exists():
        raise UserError(f"no samples file at {path}")
    try:
        with np.load(p) as z:
            image, label = z["image"], z["label"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise UserError(f"{p}: not a samples.npz of `vesselgan sample` ({exc})") from None
    if image.ndim != 3 or image.shape != label.shape:
        raise UserError(f"{p}: image {image.shape} and label {label.shape} are not N pairs of 2-D patches")
    return image, label


def load_sample_sets(paths, patch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of one or several samples.npz (files or folders), pooled in the order given,
    e.g. the pairs of several generators for one U-net. UserError on a missing or foreign
    file, or on patches of another size than `patch_size` (or than each other)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise UserError("no samples given")
    images, labels = [], []
    for path in paths:
        image, label = load_samples(path)
        size = patch_size if patch_size is not None else (images[0].shape[1] if images else image.shape[1])
        if image.shape[1:] != (size, size):
            raise UserError(f"{path}: samples of {image.shape[1]}x{image.shape[2]} pixels, "
                            f"the U-net's patches are {size}x{size}")
        images.append(image)
        labels.append(label)
    if len(images) == 1:
        return images[0], labels[0]
    return np.concatenate(images), np.concatenate(labels)
