"""Patient-level split: every case lands in exactly one of train / val / test."""
from __future__ import annotations

import numpy as np

from tf_vesselgan.config import SplitConfig
from tf_vesselgan.errors import ConfigError


def split_cases(case_ids: list[str], cfg: SplitConfig, seed: int) -> dict[str, list[str]]:
    """Splits case ids by patient, deterministically for a seed.

    With explicit case lists in `cfg` those are used (checked to exist and be
    disjoint); cases named in no list are left out. Otherwise the sorted ids are
    permuted with `seed` and cut by the fractions, giving val and test at least one
    case each when their fraction is positive and there are at least 3 cases.

    Raises:
        ConfigError: a listed case does not exist or is listed twice.
    """
    ids = sorted(case_ids)
    if cfg.train_cases is not None:
        lists = {"train": cfg.train_cases, "val": cfg.val_cases or [], "test": cfg.test_cases or []}
        seen: dict[str, str] = {}
        for split, names in lists.items():
            for name in names:
                if name not in ids:
                    raise ConfigError(f"data.split.{split}_cases: case '{name}' is not in the data folder")
                if name in seen:
                    raise ConfigError(f"data.split: case '{name}' is in both {seen[name]} and {split}")
                seen[name] = split
        return {k: sorted(v) for k, v in lists.items()}
    n = len(ids)
    order = [ids[i] for i in np.random.default_rng(seed).permutation(n)]

    def count(frac):
        k = int(round(frac * n))
        return max(k, 1) if frac > 0 and n >= 3 else k

    n_val, n_test = count(cfg.val), count(cfg.test)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ConfigError(f"data.split: {n} cases leave no training case with these fractions")
    return {
        "train": sorted(order[:n_train]),
        "val": sorted(order[n_train:n_train + n_val]),
        "test": sorted(order[n_train + n_val:]),
    }
