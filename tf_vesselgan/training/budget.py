"""Training time as a budget: machine-seconds summed over resumes, and a stop before
the budget is exceeded.

A machine-second is one second of process CPU time (all threads) divided by the cores
the process may use: it equals wall time when the run has the machine to itself and
stays fair when other work shares the cores. Every epoch's logs get `machine_seconds`
and `wall_seconds` (cumulative), so history.csv and TensorBoard plot quality against time.
"""
from __future__ import annotations

import os
import time

import keras


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class MachineClock:
    """Process CPU seconds / cores, and wall seconds, since construction."""

    def __init__(self):
        self.cores = available_cores()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def machine(self) -> float:
        return (time.process_time() - self.cpu0) / self.cores

    def wall(self) -> float:
        return time.perf_counter() - self.wall0


class BudgetStop(keras.callbacks.Callback):
    """Adds cumulative time to the epoch logs and stops when the next epoch would not fit.

    Args:
        start: (machine, wall) seconds already spent by earlier sessions of this run.
        max_seconds: the budget in machine-seconds, or None.
        on_epoch: callable(epoch, machine, wall) to persist the clock (run.json).
    """

    def __init__(self, start: tuple[float, float] = (0.0, 0.0), max_seconds: float | None = None, on_epoch=None):
        super().__init__()
        self.start = start
        self.max_seconds = max_seconds
        self.on_epoch = on_epoch
        self.exhausted = False
        self._clock = None
        self._last = 0.0

    def totals(self) -> tuple[float, float]:
        if self._clock is None:
            return self.start
        return self.start[0] + self._clock.machine(), self.start[1] + self._clock.wall()

    def on_train_begin(self, logs=None):
        self._clock = MachineClock()
        self._last = self.start[0]

    def on_epoch_end(self, epoch, logs=None):
        machine, wall = self.totals()
        if logs is not None:
            logs["machine_seconds"] = machine
            logs["wall_seconds"] = wall
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, machine, wall)
        epoch_cost = machine - self._last
        self._last = machine
        if self.max_seconds is not None and machine + epoch_cost > self.max_seconds:
            self.exhausted = True
            self.model.stop_training = True
