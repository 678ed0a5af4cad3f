"""Search spaces for ``seqcast tune``: what each model declares it may vary, beside its constructor.

A model declares ``search={"hidden_size": IntRange(16, 128, log=True), ...}`` where it registers
(``registry.register_model``); the keys are keywords of its ``__init__`` that its preset does not
fix. Every model also gets the shared dimensions of ``shared_space``: the peak learning rate around
its declared one, the lookback as a multiple of the horizon, and the window normalisation. Nothing
here imports torch or Optuna: ``tuning.py`` turns a space into Optuna suggestions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class IntRange:
    """Whole numbers from ``low`` to ``high`` inclusive (sampled on a log scale when ``log``)."""

    low: int
    high: int
    log: bool = False

    def describe(self) -> str:
        return f"{self.low}..{self.high}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class FloatRange:
    """Numbers from ``low`` to ``high`` (sampled on a log scale when ``log``)."""

    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Choice:
    """One of ``options``."""

    options: tuple[Any, ...]

    def describe(self) -> str:
        return "|".join(str(o) for o in self.options)


Dimension = Union[IntRange, FloatRange, Choice]

# The window normalisations tried for every model (its declared one among them).
WINDOW_NORM_CHOICES = ("last", "mean", "revin", "deseason")
# The lookback, as a multiple of the horizon, tried for every model (and its default lookback).
LOOKBACK_MULTIPLES = (1, 2, 3, 4, 5, 7)


def check_dimension(key: str, dimension: Any) -> str | None:
    """What is wrong with one declared dimension, or None."""
    if isinstance(dimension, (IntRange, FloatRange)):
        if isinstance(dimension, IntRange) and not all(isinstance(v, int) and not isinstance(v, bool)
                                                       for v in (dimension.low, dimension.high)):
            return f"search {key}: IntRange bounds must be whole numbers"
        if not dimension.low < dimension.high:
            return f"search {key}: low {dimension.low} must be below high {dimension.high}"
        if dimension.log and dimension.low <= 0:
            return f"search {key}: a log range must start above 0"
        return None
    if isinstance(dimension, Choice):
        return None if len(dimension.options) >= 2 else f"search {key}: a Choice needs two options or more"
    return f"search {key}: {dimension!r} is not an IntRange, FloatRange or Choice"


def shared_space(lr: float, horizon: int, default_lookback: int, max_lookback: int) -> dict[str, Dimension]:
    """The dimensions every model is tuned on: ``lr`` from a tenth to three times the declared
    one, the lookback among multiples of the horizon that the data holds (and the default), and
    the window normalisation."""
    lookbacks = sorted({default_lookback, *(k * horizon for k in LOOKBACK_MULTIPLES if k * horizon <= max_lookback)})
    space: dict[str, Dimension] = {"lr": FloatRange(lr / 10, min(1.0, lr * 3), log=True)}
    if len(lookbacks) > 1:
        space["lookback"] = Choice(tuple(lookbacks))
    space["window_norm"] = Choice(WINDOW_NORM_CHOICES)
    return space
