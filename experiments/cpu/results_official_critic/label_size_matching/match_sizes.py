"""Synthetic pairs with the real training patches' distribution of label sizes: do the
shipped generator's pairs teach more when they hold as many vessel-free patches (and as
many small, mid-sized and large vessel labels) as the real ones?

    python experiments/cpu/results_official_critic/label_size_matching/match_sizes.py OUT \
        [--draw 20000] [--keep 5000]

Draws `--draw` pairs from `saved_models/vessel_pairs_icbm/4` (seed 1) and writes
OUT/matched.npz: `--keep` of them, as many per label-size bin (0 vessel pixels, then 1–2,
3–4, 5–8, … doubling) as the 16,000 real training pairs of out/oc/patches hold in that
share, the first ones of each bin in the order drawn. OUT/bins.csv lists the shares.
"""
import argparse
from pathlib import Path

import numpy as np

import tf_vesselgan  # noqa: F401  (TF environment defaults)
from tf_vesselgan.data.pipeline import labelled_patches
from tf_vesselgan.training.sampling import pairs_from_export

EXPORT = Path("saved_models/vessel_pairs_icbm/4")


def size_bins(sizes: np.ndarray) -> np.ndarray:
    """Bin 0 for no vessel pixel, bin k ≥ 1 for 2^(k−1) < size ≤ 2^k (1–2 pixels is bin 1)."""
    return np.where(sizes == 0, 0, np.maximum(np.ceil(np.log2(np.maximum(sizes, 1))), 1)).astype(int)


def matched(real_sizes: np.ndarray, synth_sizes: np.ndarray, keep: int) -> tuple[np.ndarray, list]:
    """Indices (in draw order) of `keep` synthetic pairs whose bins follow the real shares,
    and rows (bin, real share, drawn share, kept) for the record. A bin the draw holds too
    few of is kept whole; the shortfall goes to the other bins in proportion."""
    rb, sb = size_bins(real_sizes), size_bins(synth_sizes)
    bins = np.arange(max(rb.max(), sb.max()) + 1)
    share = np.bincount(rb, minlength=len(bins)) / len(rb)
    available = np.bincount(sb, minlength=len(bins))
    want = np.zeros(len(bins), int)
    open_bins = share > 0
    left = keep
    while left > 0 and open_bins.any():  # fill capped bins first, spread the rest
        quota = np.floor(left * share * open_bins / share[open_bins].sum()).astype(int)
        quota[np.argmax(share * open_bins)] += left - quota.sum()
        take = np.minimum(quota, available - want)
        want += take
        left -= int(take.sum())
        open_bins &= want < available
    kept = np.sort(np.concatenate([np.flatnonzero(sb == b)[:want[b]] for b in bins]))
    rows = [(int(b), float(share[b]), float(available[b] / len(sb)), int(want[b])) for b in bins]
    return kept, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--patches", default="out/oc/patches")
    ap.add_argument("--draw", type=int, default=20000)
    ap.add_argument("--keep", type=int, default=5000)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, real_lab = labelled_patches(args.patches, 16000, "train", seed=1)
    image, label = pairs_from_export(EXPORT, args.draw, 1)
    real_sizes = (real_lab.reshape(len(real_lab), -1) > 0).sum(1)
    kept, rows = matched(real_sizes, (label.reshape(len(label), -1) > 0).sum(1), args.keep)
    np.savez(out / "matched.npz", image=image[kept], label=label[kept])
    np.savetxt(out / "bins.csv", np.array(rows), fmt=["%d", "%.5f", "%.5f", "%d"], delimiter=",",
               header="bin,real_share,drawn_share,kept", comments="")
    print(f"{len(kept)} pairs kept; vessel fraction kept {label[kept].mean():.5f}, drawn {label.mean():.5f}, "
          f"real {real_lab.mean():.5f}; empty labels kept {rows[0][3] / len(kept):.3f}, drawn {rows[0][2]:.3f}, "
          f"real {rows[0][1]:.3f}")


if __name__ == "__main__":
    main()
