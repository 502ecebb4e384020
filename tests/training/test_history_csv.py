"""history.csv keeps its columns aligned when a resumed run logs a key the file lacks."""
import csv

import numpy as np

from tf_vesselgan.training.callbacks import HistoryCSV


def _epochs(path, append, epochs):
    cb = HistoryCSV(path, append=append)
    cb.on_train_begin()
    for epoch, logs in epochs:
        cb.on_epoch_end(epoch, logs)


def test_a_resume_that_logs_a_new_key_adds_a_column_and_rows_stay_aligned(tmp_path):
    path = tmp_path / "history.csv"
    _epochs(path, False, [(0, {"g_loss": 1.0, "d_loss": np.float32(2.0)}), (1, {"g_loss": 1.5, "d_loss": 2.5})])
    # resumed by a version that also logs sample_similarity (sorts between the others)
    _epochs(path, True, [(2, {"g_loss": 3.0, "d_loss": 4.0, "e_similarity": 0.1, "note": "text"}),
                         (3, {"g_loss": 3.5, "e_similarity": 0.2})])
    rows = list(csv.DictReader(open(path)))
    header = open(path).readline().strip().split(",")
    assert header == ["epoch", "d_loss", "g_loss", "e_similarity"]  # no column for a non-number
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["g_loss"] for r in rows] == ["1.0", "1.5", "3.0", "3.5"]
    assert [r["d_loss"] for r in rows] == ["2.0", "2.5", "4.0", "NA"]
    assert [r["e_similarity"] for r in rows] == ["NA", "NA", "0.1", "0.2"]
    assert all(len(line.split(",")) == 4 for line in open(path))
    assert not (tmp_path / "history.csv.partial").exists()
    # a fresh (not appending) run replaces the file
    _epochs(path, False, [(0, {"g_loss": 9.0})])
    assert open(path).read().splitlines() == ["epoch,g_loss", "0,9.0"]
