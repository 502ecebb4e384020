"""`vesselgan privacy`: memorisation and membership-inference audit of one trained GAN.

Members are the patches of the GAN's training patients; non-members the patches of
its validation and test patients, whom the GAN never saw. Pairs are compared as the
GAN sees them: image in [-1, 1] (per-patch min-max), label in {0, 1}.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tf_vesselgan.errors import UserError
from tf_vesselgan.privacy import identifiers, membership
from tf_vesselgan.privacy.neighbours import flatten_pairs, nearest

NULL_PERCENTILE = 5.0


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a fraction k / n (binomial; n > 0)."""
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def memorisation(synthetic, train, holdout, chunk: int = 1024, progress=None, seed: int = 0) -> dict:
    """Distance-to-closest-record statistics of synthetic samples in one space.

    The reference ("how close does an unseen patient's patch come to a training
    patch") is the distance from each held-out patch to its closest training patch:
    the same reference set as for the samples, so under "no copying" a sample is as
    likely as a held-out patch to fall below its 5th percentile (fraction ≈ 0.05).

    The medians of sample→training and sample→held-out distances are compared like for
    like only against reference sets of one size (a larger set has closer nearest
    neighbours), so sample→training is also measured to a random subset of the training
    patches as large as the held-out set (`median_to_train_matched`).
    """
    i_tr, d_tr = nearest(synthetic, train, chunk, progress=progress)
    _, d_ho = nearest(synthetic, holdout, chunk, progress=progress)
    _, d_null = nearest(holdout, train, chunk, progress=progress)
    d_matched = d_tr
    if len(train) > len(holdout):
        subset = np.sort(np.random.default_rng(seed).choice(len(train), len(holdout), replace=False))
        _, d_matched = nearest(synthetic, train[subset], chunk, progress=progress)
    threshold = float(np.percentile(d_null, NULL_PERCENTILE))
    below = int(np.sum(d_tr < threshold))
    return {
        "n_synthetic": int(len(synthetic)), "n_train": int(len(train)), "n_holdout": int(len(holdout)),
        "threshold": threshold, "memorised_fraction": below / len(synthetic),
        "memorised_ci95": wilson_interval(below, len(synthetic)),
        "exact_copies": int(np.sum(d_tr < 1e-6)),
        "median_to_train": float(np.median(d_tr)), "median_to_holdout": float(np.median(d_ho)),
        "median_to_train_matched": float(np.median(d_matched)),
        "n_train_matched": int(min(len(train), len(holdout))),
        "median_holdout_to_train": float(np.median(d_null)),
        "_d_train": d_tr, "_d_holdout": d_ho, "_d_null": d_null, "_nearest_train": i_tr,
    }


def attack_sets(n_train: int, n_holdout: int, n_attack: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-sized random member / non-member index sets."""
    m = min(n_train, n_holdout, n_attack)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_train, m, replace=False)), np.sort(rng.choice(n_holdout, m, replace=False))


def distance_attack(synthetic, members, nonmembers, chunk: int = 1024, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Black-box attack: a patch close to some synthetic sample is called a member."""
    _, d_m = nearest(members, synthetic, chunk, progress=progress)
    _, d_n = nearest(nonmembers, synthetic, chunk, progress=progress)
    return -d_m, -d_n


def critic_attack(critic, member_pairs, nonmember_pairs, batch: int = 64, seed: int = 0):
    """White-box attack (LOGAN): a patch the critic scores as more real is called a member.

    Members and non-members are scored shuffled together in the same batches, so a
    critic with minibatch discrimination sees the same mixture for both.
    """
    x = np.concatenate([member_pairs, nonmember_pairs]).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    scores = np.empty(len(x), np.float64)
    for s in range(0, len(x), batch):
        idx = order[s:s + batch]
        out = critic(x[idx], training=False)
        scores[idx] = np.asarray(out[0] if isinstance(out, (list, tuple)) else out).reshape(-1)
    return scores[:len(member_pairs)], scores[len(member_pairs):]


def audit_arrays(train, holdout, synthetic, critic=None, feature_fn=None, n_attack: int = 1000,
                 seed: int = 0, n_boot: int = 1000, progress=None) -> dict:
    """The whole measurement on in-memory pairs [N, P, P, 2]; see `run_privacy` for files."""
    flat = {"train": flatten_pairs(train), "holdout": flatten_pairs(holdout), "synthetic": flatten_pairs(synthetic)}
    spaces = {"pixel": flat}
    if feature_fn is not None:
        spaces["unet features"] = {k: feature_fn(v[..., 0]).astype(np.float32)
                                   for k, v in (("train", train), ("holdout", holdout), ("synthetic", synthetic))}
    result = {"memorisation": {}, "membership": {}}
    for name, sets in spaces.items():
        result["memorisation"][name] = memorisation(sets["synthetic"], sets["train"], sets["holdout"],
                                                    progress=progress, seed=seed)
    mem_idx, non_idx = attack_sets(len(train), len(holdout), n_attack, seed)
    m_sc, n_sc = distance_attack(flat["synthetic"], flat["train"][mem_idx], flat["holdout"][non_idx],
                                 progress=progress)
    result["membership"]["distance to closest sample (black box)"] = {
        **membership.summarize(m_sc, n_sc, n_boot, seed), "_scores": (m_sc, n_sc)}
    if critic is not None:
        m_sc, n_sc = critic_attack(critic, train[mem_idx], holdout[non_idx], seed=seed)
        result["membership"]["critic score (white box, LOGAN)"] = {
            **membership.summarize(m_sc, n_sc, n_boot, seed), "_scores": (m_sc, n_sc)}
    return result


def load_split_pairs(patches_dir, splits) -> np.ndarray:
    """Every pair of the given splits, in shard order, as float32 [N, P, P, 2]."""
    from tf_vesselgan.data.pipeline import make_dataset

    out = []
    for split in splits:
        for batch in make_dataset(patches_dir, split, batch_size=512, mode="gan", shuffle=False,
                                  drop_remainder=False):
            out.append(batch.numpy())
    if not out:
        raise UserError(f"{patches_dir}: no patches in splits {', '.join(splits)}")
    return np.concatenate(out)


def verdict(result: dict, max_memorised: float, max_auc: float) -> list[str]:
    """Human-readable reasons the audit fails (empty = passes)."""
    reasons = []
    for space, m in result["memorisation"].items():
        if m["memorised_fraction"] > max_memorised:
            lo, hi = m["memorised_ci95"]
            reasons.append(f"{space}: {m['memorised_fraction']:.1%} of samples (95% CI {lo:.1%}–{hi:.1%}) are closer "
                           f"to a training patch than {NULL_PERCENTILE:g}% of unseen patients' patches are "
                           f"(limit {max_memorised:.0%})")
        if m["exact_copies"]:
            reasons.append(f"{space}: {m['exact_copies']} samples are exact copies of training patches")
    for attack, a in result["membership"].items():
        if a["auc_ci95"][0] > max_auc:
            reasons.append(f"{attack}: membership AUC {a['auc']:.3f} (95% CI from {a['auc_ci95'][0]:.3f}) "
                           f"above {max_auc}")
    if result.get("identifiers"):
        reasons.append(f"{len(result['identifiers'])} identifier findings in handed-out files")
    return reasons


def run_privacy(run, patches_dir, out, n: int = 2000, seed: int = 0, samples=None, features=None,
                data_dir=None, export=None, n_attack: int = 1000, max_memorised: float = 0.10,
                max_auc: float = 0.60, overwrite: bool = False, progress: bool = True) -> dict:
    """Audits the GAN in run folder `run`; writes privacy.md, privacy.json and figures to `out`."""
    from tf_vesselgan.privacy.report import write_report
    from tf_vesselgan.training.dp import dp_statement
    from tf_vesselgan.training.run_models import restore_critic, restore_generator
    from tf_vesselgan.utils.progress import atomic_output_dir, progress_bar

    t0 = time.perf_counter()
    run, patches_dir = Path(run), Path(patches_dir)
    manifest, status, holdout_splits = _checked_inputs(run, patches_dir, n, n_attack)
    generator, cfg = restore_generator(run)
    critic = restore_critic(run)
    feature_fn = _feature_fn(features)
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        train = load_split_pairs(patches_dir, ["train"])
        holdout = load_split_pairs(patches_dir, holdout_splits)
        synthetic, sample_files = _synthetic_pairs(generator, cfg.gan.label_threshold, samples, n, seed)
        m_att = min(len(train), len(holdout), n_attack)
        per_space = len(synthetic) * (3 if len(train) > len(holdout) else 2) + len(holdout)
        rows = per_space * (2 if feature_fn else 1) + 2 * m_att
        bar = progress_bar(total=rows, desc="privacy", unit="query", enable=progress)
        result = audit_arrays(train, holdout, synthetic, critic, feature_fn, n_attack, seed, progress=bar.update)
        bar.close()
        _scan_identifiers(result, manifest, data_dir, [*sample_files, run / "generator.keras"] +
                          ([Path(export)] if export else []))
        result["verdict"] = verdict(result, max_memorised, max_auc)
        result["settings"] = {"run": str(run), "patches": str(patches_dir), "arch": cfg.gan.arch,
                              "width": cfg.gan.width, "n_samples": int(len(synthetic)), "seed": seed,
                              "samples": str(samples) if samples else None, "features": features,
                              "holdout_splits": holdout_splits, "max_memorised": max_memorised,
                              "max_auc": max_auc, "null_percentile": NULL_PERCENTILE,
                              "differential_privacy": dp_statement(status)}
        result["seconds"] = time.perf_counter() - t0
        write_report(tmp, result, train, synthetic)
        (tmp / "privacy.json").write_text(json.dumps(public(result), indent=2))
    return result


def _checked_inputs(run: Path, patches_dir: Path, n: int, n_attack: int) -> tuple[dict, dict, list[str]]:
    """(patches manifest, run status, non-member splits), or a one-line UserError."""
    from tf_vesselgan.data.build import read_manifest
    from tf_vesselgan.training.run_folder import read_status

    manifest = read_manifest(patches_dir)
    status = read_status(run)
    if status.get("kind") != "gan":
        raise UserError(f"{run} is not a GAN run folder")
    if status.get("patches_config_hash") not in (None, manifest.get("config_hash")):
        raise UserError(f"{run} was trained on other patches than {patches_dir} (config hashes differ)")
    holdout_splits = [s for s in ("val", "test") if manifest["counts"].get(s, 0) > 0]
    if not holdout_splits:
        raise UserError(f"{patches_dir} has no validation or test patients: nothing to compare against")
    if n <= 0 or n_attack <= 0:
        raise UserError("--n and --n-attack must be positive")
    return manifest, status, holdout_splits


def _feature_fn(features: str | None):
    """The U-net encoder of `features` ("unet:RUN"), or None."""
    if not features:
        return None
    from tf_vesselgan.evaluation.fid import unet_extractor

    if not features.startswith("unet:"):
        raise UserError(f"--features must be unet:RUN, got {features!r}")
    return unet_extractor(features[5:])


def _synthetic_pairs(generator, threshold: float, samples, n: int, seed: int) -> tuple[np.ndarray, list[Path]]:
    """The audited pairs [N, P, P, 2]: a samples file's, or n generated with `seed`; and
    the handed-out files to scan for identifiers."""
    from tf_vesselgan.training.sampling import generate, load_samples

    if samples is not None:
        image, label = load_samples(samples)
        files = [Path(samples)]
    else:
        parts = list(generate(generator, n, seed, threshold))
        image, label = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        files = []
    return np.stack([image, label.astype(np.float32)], axis=-1), files


def _scan_identifiers(result: dict, manifest: dict, data_dir, handed_out: list[Path]) -> None:
    """Searches the handed-out files for the data set's case ids, file names and affines."""
    ids = [c for split in manifest["splits"].values() for c in split]
    needles, short = identifiers.identifier_strings(ids, data_dir)
    affines = identifiers.source_affines(data_dir) if data_dir else []
    scanned = [p for p in handed_out if Path(p).exists()]
    result["identifiers"] = identifiers.scan(scanned, needles, affines)
    result["identifier_check"] = {"scanned": [str(p) for p in scanned], "strings": len(needles),
                                  "short_ids_not_checked": short, "affines": len(affines)}


def public(result: dict) -> dict:
    """The result without the private arrays (keys starting with '_')."""
    if isinstance(result, dict):
        return {k: public(v) for k, v in result.items() if not str(k).startswith("_")}
    if isinstance(result, list):
        return [public(v) for v in result]
    return result
