"""Run folders: resolved config, versions, status, shared by every training command."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from tf_vesselgan.config import load_config, save_config, to_dict
from tf_vesselgan.errors import UserError


def versions() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    import tf_vesselgan

    return {"python": sys.version.split()[0], "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "tf_vesselgan": tf_vesselgan.__version__, "platform": platform.platform()}


def prepare_run(out, cfg, resume: bool, kind: str) -> tuple[Path, object]:
    """Creates (or, with resume, reopens) a run folder; returns (path, config to use).

    On resume the run's own config.yaml is the base; the caller's overrides have
    already been applied to `cfg` only when not resuming.
    """
    run = Path(out)
    if resume:
        if not (run / "config.yaml").exists():
            raise UserError(f"--resume: {run} is not a {kind} run folder (no config.yaml)")
        old = to_dict(load_config(run / "config.yaml"))
        changed = sorted(_changed_keys(old, to_dict(cfg)))
        if changed:  # config.yaml always says what the run trains with now
            save_config(cfg, run / "config.yaml")
            history = read_status(run).get("changed_on_resume", [])
            write_status(run, changed_on_resume=history + [{"keys": changed, "previous": {
                k: _get(old, k) for k in changed}}])
        return run, cfg
    if run.exists() and any(run.iterdir()):
        raise UserError(f"run folder {run} already exists (use --resume to continue it)")
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    (run / "versions.json").write_text(json.dumps(versions(), indent=2))
    write_status(run, kind=kind, state="created")
    return run, cfg


def config_changes(run, cfg) -> dict[str, tuple]:
    """{dotted key: (value in the run's config.yaml, value in cfg)} for every key that differs."""
    old, new = to_dict(load_config(Path(run) / "config.yaml")), to_dict(cfg)
    return {k: (_get(old, k), _get(new, k)) for k in _changed_keys(old, new)}


def _changed_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _changed_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def load_run_config(run, overrides: dict | None = None):
    return load_config(Path(run) / "config.yaml", overrides)


def write_status(run: Path, **fields) -> None:
    path = Path(run) / "run.json"
    status = json.loads(path.read_text()) if path.exists() else {}
    status.update(fields, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
    path.write_text(json.dumps(status, indent=2))


def has_status(run) -> bool:
    """Whether `run` has a run.json (any kind of run folder)."""
    return (Path(run) / "run.json").exists()


def read_status(run) -> dict:
    path = Path(run) / "run.json"
    if not path.exists():
        raise UserError(f"{run} is not a run folder (no run.json)")
    return json.loads(path.read_text())
