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


def budget_fraction(epoch: int, epochs: int, machine_seconds: float, max_seconds: float | None) -> float:
    """How much of a run's budget is spent: the larger of epochs done / epochs and
    machine-seconds spent / max_seconds (when there is a time budget)."""
    spent = epoch / epochs
    if max_seconds is not None:
        spent = max(spent, machine_seconds / max_seconds)
    return min(spent, 1.0)


def decayed_rate_factor(spent: float, decay_from: float) -> float:
    """The learning rate's factor once `spent` of the budget is gone: 1 until `decay_from`,
    then linear to 0 at the budget's end."""
    if spent <= decay_from:
        return 1.0
    return max(0.0, (1.0 - spent) / (1.0 - decay_from))


class LearningRateDecay(keras.callbacks.Callback):
    """Sets each optimiser's learning rate to its base rate × `decayed_rate_factor` at every
    epoch's start (gan.lr_decay_from); the factor is logged as `learning_rate_factor`.

    The base rates come from the config, not from the optimisers, whose decayed rate a
    resumed run restores from its checkpoint.

    Args:
        optimizers: the optimisers, each with the base rate it starts from.
        decay_from: the budget fraction after which the rates fall.
        epochs, max_seconds: the run's budget (gan.epochs, gan.max_seconds).
        spent_seconds: callable returning the machine-seconds spent so far (BudgetStop.totals).
    """

    def __init__(self, optimizers: list[tuple[keras.optimizers.Optimizer, float]], decay_from: float,
                 epochs: int, max_seconds: float | None, spent_seconds):
        super().__init__()
        self.optimizers = optimizers
        self.decay_from = decay_from
        self.epochs = epochs
        self.max_seconds = max_seconds
        self.spent_seconds = spent_seconds
        self.factor = 1.0

    def on_epoch_begin(self, epoch, logs=None):
        spent = budget_fraction(epoch, self.epochs, self.spent_seconds(), self.max_seconds)
        self.factor = decayed_rate_factor(spent, self.decay_from)
        for optimizer, base in self.optimizers:
            optimizer.learning_rate = base * self.factor

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate_factor"] = self.factor
