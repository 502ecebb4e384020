"""CSV tables of run folders and studies, read with the file closed again."""
from __future__ import annotations

import csv
from pathlib import Path


def read_rows(path) -> list[dict]:
    """Every row of a CSV file with a header, as dicts."""
    with open(Path(path), newline="") as f:
        return list(csv.DictReader(f))
