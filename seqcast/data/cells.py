"""What a cell of a CSV may hold, as every reader in this package sees it: the markers of a missing
value, a whole number, a time-zone offset; a column's values as stripped text; and whether a column
is still the file's text or was typed by the fast reader (``table.py``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

MISSING = {"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a"}
INTEGER = re.compile(r"^[+-]?\d+$")
TIME_ZONE_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")  # at the end of a timestamp: Z, +01:00, -0500


def stripped(raw: np.ndarray) -> pd.Series:
    """The values as text without surrounding spaces."""
    return pd.Series(raw, dtype=object).astype(str).str.strip()


def is_text(values) -> bool:
    """Whether a column holds the file's text (object strings) rather than typed values: numbers or
    timestamps as the fast reader typed them."""
    return isinstance(values, np.ndarray) and values.dtype == object


def values_as_text(values) -> np.ndarray:
    """Typed values (numbers, or timestamps) as the text a CSV would hold: what a column read from a
    typed source (Parquet) gives where its text is asked for (an error quoting a value, a decimal check).
    NaN and NaT become empty fields."""
    if np.asarray(values).dtype.kind == "M" or isinstance(values, pd.DatetimeIndex):
        stamps = pd.Series(pd.DatetimeIndex(values))
        text = stamps.dt.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "", regex=False)
        return text.fillna("").to_numpy(dtype=object)
    return np.array(["" if v != v else repr(v) for v in np.asarray(values).tolist()], dtype=object)
