"""Progress bars and small output helpers shared by long-running commands."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from tqdm import tqdm


def progress_bar(iterable=None, desc: str = "", unit: str = "it", total=None, enable: bool = True):
    """A tqdm bar on a terminal's stderr; silent in logs, when disabled or VESSELGAN_NO_PROGRESS is set."""
    disable = (not enable) or bool(os.environ.get("VESSELGAN_NO_PROGRESS")) or not sys.stderr.isatty()
    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=False)


@contextlib.contextmanager
def atomic_output_dir(out: str | Path, overwrite: bool = False):
    """Yields a temporary folder next to `out`, renamed to `out` only on success.

    On any exception the temporary folder is removed, so nothing half-written is left.
    """
    from tf_vesselgan.errors import UserError

    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"output folder {out} already exists (use --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
