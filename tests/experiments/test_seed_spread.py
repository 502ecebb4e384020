"""benchmarks/seed_spread.py: ratios to each run's own real U-net, spread over runs, the
run picked by validation, and one-line errors with exit code 2."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BENCHMARKS, load_benchmark

SCRIPT = BENCHMARKS / "seed_spread.py"
COLUMNS = ["unet", "test_csv", "test_dice", "test_dice_sd", "test_n", "val_csv", "val_dice", "val_dice_sd", "val_n"]


def _module():
    return load_benchmark("seed_spread")


def _table(folder: Path, rows: dict[str, tuple]) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "table2.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for unet, (test, val) in rows.items():
            w.writerow([unet, "t.csv", test, 0.0, 2, "v.csv", val, 0.0, 1])
    return folder


def test_ratios_use_each_runs_own_real_unet_and_the_pick_ignores_test(tmp_path):
    m = _module()
    runs = {"a": m.read_table(_table(tmp_path / "a", {"real": (0.8, 0.5), "synthetic_dcgan": (0.4, 0.45)})),
            "b": m.read_table(_table(tmp_path / "b", {"real": (0.5, 0.5), "synthetic_dcgan": (0.45, 0.40)}))}
    rows, summary = m.spread(runs)
    assert [round(r["test_ratio"], 6) for r in rows] == [0.5, 0.9]
    (s,) = summary
    assert s["runs"] == 2
    assert s["test_ratio_mean"] == pytest.approx(0.7)
    assert s["test_ratio_sd"] == pytest.approx(0.2 * 2 ** 0.5)
    # run a has the better validation Dice, though b has the better test ratio
    assert s["picked_by_val"] == "a" and s["picked_test_ratio"] == pytest.approx(0.5)


def test_one_run_has_no_sd_and_a_missing_validation_picks_nothing(tmp_path):
    m = _module()
    runs = {"a": m.read_table(_table(tmp_path / "a", {"real": (0.8, ""), "synthetic_wgan-gp": (0.4, "")}))}
    _, (s,) = m.spread(runs)
    assert s["test_ratio_sd"] is None and s["val_ratio_mean"] is None and s["picked_by_val"] is None


def _cli(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True)


def test_cli_prints_the_runs_and_writes_the_csv(tmp_path):
    _table(tmp_path / "a", {"real": (0.8, 0.5), "synthetic_dcgan": (0.4, 0.45)})
    _table(tmp_path / "b", {"real": (0.5, 0.5), "synthetic_dcgan": (0.45, 0.40)})
    done = _cli("--run", "s1=a", "--run", "s2=b", "--out", "spread.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test ratio 0.70 ± 0.28" in done.stdout and "best validation Dice: s1, its test ratio 0.50" in done.stdout
    with open(tmp_path / "spread.csv", newline="") as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["s1", "s2"]


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "no table2.csv"),
    (lambda d: _table(d, {"synthetic_dcgan": (0.4, 0.4)}), "no row for the real U-net"),
    (lambda d: _table(d, {"real": ("n/a", 0.5), "synthetic_dcgan": (0.4, 0.4)}), "real test_dice is 'n/a'"),
])
def test_bad_folders_fail_in_one_line_with_exit_code_2_and_write_nothing(tmp_path, make, message):
    make(tmp_path / "a")
    done = _cli("--run", "s1=a", "--out", "spread.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / "spread.csv").exists()


def test_a_label_given_twice_is_refused(tmp_path):
    _table(tmp_path / "a", {"real": (0.8, 0.5), "synthetic_dcgan": (0.4, 0.45)})
    done = _cli("--run", "s1=a", "--run", "s1=a", cwd=tmp_path)
    assert done.returncode == 2 and "label 's1' given twice" in done.stderr
