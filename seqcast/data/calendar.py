"""Calendar features: the known-future inputs generated from the timestamps (``--calendar``), and which
of them a request names (``auto``: every feature that varies on the data's grid). Their values become
model inputs in ``covariates.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .frequency import future_grid

# Calendar features, each in [-0.5, 0.5]; the order is that of format-5 checkpoints' calendar input.
CALENDAR_FEATURES = {
    "hour": lambda t: t.hour / 23.0 - 0.5,
    "dow": lambda t: t.day_of_week / 6.0 - 0.5,
    "dom": lambda t: (t.day - 1) / 30.0 - 0.5,
    "doy": lambda t: (t.day_of_year - 1) / 365.0 - 0.5,
    "month": lambda t: (t.month - 1) / 11.0 - 0.5,
}


def resolve_calendar(request: str, first: pd.Index, freq: str, notes: list[str]) -> tuple[str, ...]:
    """``--calendar`` as feature names: ``none``; ``auto``, every feature that varies on the data's grid
    (hour and day of week for hourly data, not for monthly); or names, e.g. ``hour,dow``."""
    text = (request or "none").strip().lower()
    if text == "none":
        return ()
    integer = not isinstance(first, pd.DatetimeIndex)
    if text == "auto":
        if integer:
            notes.append("--calendar auto: the time column holds step numbers, not dates: no calendar features")
            return ()
        sample = future_grid(first[-1:], freq, 2 * 366 * 24 if freq.lstrip("0123456789").startswith(("h", "min"))
                             else 800)
        return tuple(n for n in CALENDAR_FEATURES if np.ptp(CALENDAR_FEATURES[n](sample)) > 0)
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CALENDAR_FEATURES]
    if unknown or not names:
        raise InputError(f"--calendar {request!r}: choose auto, none, or features among "
                         f"{', '.join(CALENDAR_FEATURES)} (comma-separated)")
    if integer:
        raise InputError(f"--calendar {request}: the time column holds step numbers, not dates, so there is no "
                         "calendar; leave --calendar out or give dates")
    return tuple(n for n in CALENDAR_FEATURES if n in names)
