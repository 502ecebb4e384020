"""Identifier check: synthetic outputs must carry nothing that points back to a patient.

Scans files handed out (sample folders, generator files, exported SavedModels) for
source case ids, source file names and the data folder's path — in raw bytes, inside
zip members (.npz, .keras) and gzip streams (.nii.gz) — and NIfTI sample headers for
description text and source affines. Any finding fails the audit.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

MIN_ID_LENGTH = 4  # shorter ids ("7") match everywhere; they are reported as unchecked


def _payloads(path: Path):
    """Yields (name, bytes) for a file and, for containers, for each member."""
    data = path.read_bytes()
    yield path.name, data
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                yield f"{path.name}:{info.filename}", zf.read(info)
    elif data[:2] == b"\x1f\x8b":
        try:
            yield f"{path.name}:gunzip", gzip.decompress(data)
        except OSError:
            pass


def identifier_strings(case_ids, data_dir=None) -> tuple[list[str], list[str]]:
    """(strings to search for, ids too short to search for)."""
    needles, short = set(), []
    for cid in case_ids:
        if len(cid) < MIN_ID_LENGTH:
            short.append(cid)
        else:
            needles.add(cid)
    if data_dir is not None:
        data_dir = Path(data_dir)
        needles.add(str(data_dir.resolve()))
        for case in _cases(data_dir):  # the source file names, in either data layout
            needles.update(f.name for f in (case.image, case.label, case.mask) if f is not None)
    return sorted(needles), short


def _cases(data_dir):
    from tf_vesselgan.data.nifti import discover_cases

    return discover_cases(data_dir)[0]


def source_affines(data_dir) -> list[np.ndarray]:
    import nibabel as nib

    return [np.asarray(nib.load(str(c.image)).affine, np.float64) for c in _cases(data_dir)]


def scan(paths, needles: list[str], affines: list[np.ndarray] = ()) -> list[dict]:
    """Findings [{file, kind, detail}] over every file under `paths` (files or folders)."""
    # NumPy stores str arrays as UTF-32, some tools write UTF-16: search all three.
    lowered = [(n, n.lower().encode(enc)) for n in needles for enc in ("utf-8", "utf-16-le", "utf-32-le")]
    findings = []
    files = []
    for p in paths:
        p = Path(p)
        files.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    for f in files:
        for name, blob in _payloads(f):
            low = blob.lower()
            hits = sorted({text for text, needle in lowered if needle in low})
            findings += [{"file": str(f), "kind": "identifier", "detail": f"{name} contains {t!r}"} for t in hits]
        if f.name.endswith((".nii", ".nii.gz")):
            findings.extend(_nifti_findings(f, affines))
    return findings


def _nifti_findings(path: Path, affines) -> list[dict]:
    import nibabel as nib

    img = nib.load(str(path))
    out = []
    for field in ("descrip", "aux_file", "intent_name", "db_name"):
        if field in img.header:
            text = np.asarray(img.header[field]).tobytes().strip(b"\x00 ")
            if text:
                out.append({"file": str(path), "kind": "header text", "detail": f"{field} = {text[:60]!r}"})
    aff = np.asarray(img.affine, np.float64)
    if any(np.allclose(aff, a) for a in affines) and not np.allclose(aff, np.eye(4)):
        out.append({"file": str(path), "kind": "source affine", "detail": "affine equals a source volume's"})
    return out
