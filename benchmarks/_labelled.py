"""`--flag LABEL=VALUE` arguments of the benchmark scripts, parsed in one place."""
from __future__ import annotations

import argparse


def labelled(ap: argparse.ArgumentParser, flag: str, specs: list[str]) -> dict[str, str]:
    """{label: value} in the order given; `ap.error` (exit code 2) on a spec without both
    parts or a label given twice."""
    out = {}
    for spec in specs:
        label, _, value = spec.partition("=")
        if not label or not value:
            ap.error(f"{flag} {spec!r}: expected LABEL=FOLDER")
        if label in out:
            ap.error(f"{flag} {spec!r}: label {label!r} given twice")
        out[label] = value
    return out
