"""Where each stage of a study writes, under the study's output folder.

The one place that names stage folders: the runner builds into them, the curve, the
transfer study and the report read from them. Existing study folders keep these names.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Layout:
    out: Path

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))

    # the main study
    @property
    def phantom(self) -> Path:
        return self.out / "phantom"

    @property
    def patches(self) -> Path:
        return self.out / "patches"

    def gan(self, arch: str) -> Path:
        return self.out / f"gan_{arch}"

    def samples(self, arch: str) -> Path:
        return self.out / f"samples_{arch}"

    @staticmethod
    def unet_name(train: str, arch: str | None = None) -> str:
        """"real", or "synthetic_<arch>" / "both_<arch>": the U-net's name in tables."""
        return train if arch is None else f"{train}_{arch}"

    def unet(self, name: str) -> Path:
        return self.out / f"unet_{name}"

    def evaluation(self, name: str, split: str) -> Path:
        return self.out / f"eval_{name}_{split}"

    @property
    def fid(self) -> Path:
        return self.out / "fid"

    def privacy(self, arch: str) -> Path:
        return self.out / f"privacy_{arch}"

    def curve(self, arch: str, minutes: float) -> Path:
        return self.out / f"curve_{arch}_{minutes:g}min"

    # inside a curve point's folder
    @staticmethod
    def point_samples(point: Path) -> Path:
        return point / "samples"

    @staticmethod
    def point_unet(point: Path) -> Path:
        return point / "unet"

    @staticmethod
    def point_evaluation(point: Path) -> Path:
        return point / "eval_test"

    # the transfer study's second data set
    @property
    def second_phantom(self) -> Path:
        return self.out / "t_phantom"

    def transfer_patches(self, n: int | None = None) -> Path:
        """All patches of the second data set, or those of its first n training patients."""
        return self.out / ("t_patches" if n is None else f"t_patches_n{n}")

    @staticmethod
    def transfer_tag(arm: str, n: int | None = None) -> str:
        """"reference", or "<scratch|pretrained>_n<n>"."""
        return arm if n is None else f"{arm}_n{n}"

    def transfer_unet(self, tag: str) -> Path:
        return self.out / f"t_unet_{tag}"

    def transfer_evaluation(self, tag: str) -> Path:
        return self.out / f"t_eval_{tag}"

    # what the report writes
    def file(self, name: str) -> Path:
        """report.md, table2.csv, curve.csv, figures: files at the top of the study folder."""
        return self.out / name
