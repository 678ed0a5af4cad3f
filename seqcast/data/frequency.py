"""Frequencies and the regular grid: inferring a series' frequency, checking every series lies on it
without gaps (vectorised over all series at once), the timestamps after a series and the natural
seasons of a frequency (calendar features: ``calendar.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from .cells import INTEGER
from .config import DEFAULT_ID, Panel, Series


def infer_frequency(times: pd.Index) -> str | None:
    """The pandas offset alias (or integer step) that puts every timestamp on one regular grid.

    Business days ("B") when every timestamp is a weekday at one time of day, the usual step is a
    day and the data spans a weekend; holidays are then gaps on that grid.
    """
    if len(times) < 2:
        return None
    if not isinstance(times, pd.DatetimeIndex):
        diffs = np.diff(times.to_numpy())
        step = int(np.gcd.reduce(diffs)) if len(diffs) else 1
        return str(step) if step > 0 else None
    if len(times) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 announces infer_freq's future return type
            freq = pd.infer_freq(times)
        if freq:
            return canonical(pd.tseries.frequencies.to_offset(freq).freqstr)
    diffs = np.diff(times.to_numpy())  # timedelta64 in the index's own resolution
    values, counts = np.unique(diffs, return_counts=True)
    mode = pd.Timedelta(values[np.argmax(counts)])
    days = mode / pd.Timedelta(days=1)
    first_month = times[0].strftime("%b").upper()
    if _business_days(times, diffs, mode):
        candidates = ["B"]
    elif 27 <= days <= 32:
        candidates = ["MS", "ME", "BMS", "BME"]
    elif 88 <= days <= 93:
        candidates = [f"QS-{m}" for m in ("JAN", "FEB", "MAR")] + [f"QE-{m}" for m in ("DEC", "JAN", "FEB")]
    elif 364 <= days <= 367:
        candidates = ["YS-JAN", "YE-DEC", f"YS-{first_month}", f"YE-{first_month}"]
    elif days == 7:
        candidates = [f"W-{times[0].day_name()[:3].upper()}"]
    else:
        candidates = [_step_alias(mode)]
    for candidate in candidates:
        try:
            on_grid = times.difference(grid(times[0], times[-1], candidate, len(times))).empty
        except InputError:
            continue
        if on_grid:
            return pd.tseries.frequencies.to_offset(candidate).freqstr
    return None


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def canonical(freq: str) -> str:
    """One name for each quarterly grid: a quarter anchored in any of its three months is the same grid
    (QS-OCT and QS-JAN; QE-SEP and QE-DEC), and pandas 2 and 3 infer different anchors for the same
    dates. The name kept is the first quarter's (QS-JAN/FEB/MAR, QE-DEC/JAN/FEB), as a checkpoint records it."""
    kind, dash, anchor = freq.partition("-")
    if not dash or kind.lstrip("0123456789") not in ("QS", "QE", "Q", "BQS", "BQE", "BQ") or anchor not in _MONTHS:
        return freq
    month = _MONTHS.index(anchor) % 3  # 0 = JAN/APR/JUL/OCT
    first = _MONTHS[month] if kind.lstrip("0123456789").endswith("S") else ("JAN", "FEB", "DEC")[month]
    return f"{kind}-{first}"


def _business_days(times: pd.DatetimeIndex, diffs: np.ndarray, mode: pd.Timedelta) -> bool:
    if mode != pd.Timedelta(days=1) or (times.day_of_week >= 5).any():
        return False
    clock = times - times.normalize()
    weekday = times.day_of_week.to_numpy()
    spans_weekend = (np.diff(weekday) <= 0) | (diffs >= np.timedelta64(7, "D"))
    return bool((clock == clock[0]).all() and spans_weekend.any())


def _step_alias(step: pd.Timedelta) -> str:
    """A step as an alias: whole days as "D"/"2D" (pandas would say "24h"), else pandas' own."""
    if step > pd.Timedelta(0) and step % pd.Timedelta(days=1) == pd.Timedelta(0):
        n = step // pd.Timedelta(days=1)
        return "D" if n == 1 else f"{n}D"
    return pd.tseries.frequencies.to_offset(step).freqstr


def grid(start, end, freq: str, n_hint: int) -> pd.Index:
    """The regular grid from ``start`` to ``end``; refuses absurd sizes (a wrong --freq, or integer
    steps with one huge jump), counted before anything is allocated."""
    if isinstance(start, (int, np.integer)):
        step = int(freq)
        _check_size((int(end) - int(start)) // step + 1, n_hint, freq)
        return pd.Index(np.arange(start, end + 1, step, dtype=np.int64))
    offset = pd.tseries.frequencies.to_offset(freq)
    if isinstance(offset, pd.offsets.Tick):  # count without building the grid: "1us" over a year is 3e13 rows
        periods = int((end - start) / pd.Timedelta(offset)) + 1
    else:
        periods = len(pd.date_range(start, end, freq=freq)) if n_hint < 1_000_000 else 0
    _check_size(periods, n_hint, freq)
    return pd.date_range(start, end, freq=freq)


def _check_size(periods: int, n_hint: int, freq: str) -> None:
    if periods > 100 * n_hint + 10_000:
        raise InputError(f"frequency {freq!r} would need {periods} rows to cover {n_hint} timestamps; check --freq"
                         + (" and the time column (a jump between integer steps?)" if freq.isdigit() else ""))


def regular_series(times: pd.Index, bounds: np.ndarray, freq: str) -> np.ndarray:
    """Per series, rows ``bounds[i]:bounds[i + 1]`` of ``times`` (sorted, no repeats): whether it lies
    on the ``freq`` grid that starts at its first timestamp without a gap, for all series at once.

    A False needs a closer look (``regularise`` says what is wrong, or fills), not always an error.
    Fixed steps (integer steps, hours, days) are checked by arithmetic on the timestamps; calendar
    frequencies (months, weeks, business days) against one grid spanning all series.
    """
    if len(bounds) < 2:
        return np.zeros(0, dtype=bool)
    integer = not isinstance(times, pd.DatetimeIndex)
    offset = None if integer else pd.tseries.frequencies.to_offset(freq)
    if integer or isinstance(offset, pd.offsets.Tick):
        t = np.asarray(times, dtype=np.int64) if integer else times.asi8  # in the index's own unit
        step = int(freq) if integer else pd.Timedelta(offset).value / pd.Timedelta(1, unit=times.unit).value
        if step != int(step):
            return np.zeros(len(bounds) - 1, dtype=bool)  # a step finer than the timestamps' unit
        steps, step = np.diff(t), int(step)
    else:
        days = (times.max() - times.min()) / pd.Timedelta(days=1)
        if offset.n != 1 or days > 100 * len(times) + 10_000:
            return np.zeros(len(bounds) - 1, dtype=bool)  # each series on its own grid, as regularise builds it
        full = pd.date_range(times.min(), times.max(), freq=freq)
        if not len(full):
            return np.zeros(len(bounds) - 1, dtype=bool)  # not one timestamp on the grid
        position = np.minimum(full.searchsorted(times), len(full) - 1)
        if not np.asarray(full[position] == times).all():
            return np.zeros(len(bounds) - 1, dtype=bool)  # off the common grid somewhere: look at each
        steps, step = np.diff(position), 1
    wrong = steps != step  # a series is regular when every step within it is one step of the grid
    wrong[bounds[1:-1] - 1] = False  # from one series to the next
    count = np.concatenate([[0], np.cumsum(wrong, dtype=np.int32 if len(wrong) < 2**31 else np.int64)])
    return count[bounds[1:] - 1] - count[bounds[:-1]] == 0


def future_times(last, freq: str, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after ``last`` on the series' grid."""
    if isinstance(last, (int, np.integer)):
        return pd.Index(last + int(freq) * np.arange(1, horizon + 1), dtype=np.int64)
    return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]


def future_grid(lasts: pd.Index, freq: str, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after each timestamp of ``lasts`` on the ``freq`` grid, one series after
    another (N * H values): ``future_times`` of each, in a few vectorised operations.

    All series share the frequency, and many share their last timestamp, so each distinct last
    timestamp is stepped once, by k offsets for k = 1..H (what ``pd.date_range`` does from an
    on-grid start, calendar offsets such as month starts included).
    """
    steps = np.arange(1, horizon + 1)
    if not isinstance(lasts, pd.DatetimeIndex):
        return pd.Index((lasts.to_numpy()[:, None] + int(freq) * steps).reshape(-1), dtype=np.int64)
    _, first, inverse = np.unique(lasts.asi8, return_index=True, return_inverse=True)
    starts, offset = lasts[first], pd.tseries.frequencies.to_offset(freq)
    if lasts.tz is not None and isinstance(offset, pd.offsets.Day) and isinstance(offset, pd.offsets.Tick):
        # pandas 2 adds a Day as 24 h, where date_range steps calendar days in the zone: each start on its own
        ahead = np.stack([future_times(t, freq, horizon).as_unit(lasts.unit).asi8 for t in starts])
    else:
        with warnings.catch_warnings():  # offsets pandas cannot vectorise (custom business days) it steps one by one
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            ahead = np.stack([(starts + k * offset).asi8 for k in steps], axis=1)  # (distinct lasts, H), UTC epoch
    flat = pd.DatetimeIndex(ahead[inverse.reshape(-1)].reshape(-1).view(f"M8[{lasts.unit}]"))
    flat = flat.tz_localize("UTC").tz_convert(lasts.tz) if lasts.tz is not None else flat
    return flat.as_unit(future_times(lasts[0], freq, 1).unit)  # the unit date_range gives (business days: us)


_CHECK_READING = ("check --freq, and how the dates are read: --dayfirst or --monthfirst for dates like 01.02.2024, "
                  "or --date-format")


def regularise(series: Series, freq: str, policy: str, name: str, notes: list[str]) -> Series:
    """Check ``series`` lies on the ``freq`` grid without gaps; fill gaps when a policy allows.

    Filling is refused when the grid has more missing timestamps than observed ones: the frequency
    or the reading of the dates is then wrong, and filling would invent most of the series.
    """
    times = series.times
    label = f"series {series.id!r}: " if series.id != DEFAULT_ID else ""
    try:
        full = grid(times[0], times[-1], freq, len(times))
    except InputError as error:
        raise InputError(f"{name}: {label}{error}") from None
    off_grid = times.difference(full)
    if not off_grid.empty:
        raise InputError(
            f"{name}: {label}timestamp {off_grid[0]} is off the {freq!r} grid that starts at {times[0]}; "
            "the spacing is irregular: set the frequency with --freq or resample the data"
        )
    if len(full) == len(times):
        return series
    position = int(np.argmax(np.asarray(full[: len(times)]) != np.asarray(times)))
    missing, observed = len(full) - len(times), len(times)
    business = freq == "B"
    what = ("business day" if business else "timestamp") + ("s" if missing != 1 else "")
    gap = (f"gap after {times[position - 1]}: next timestamp is {times[position]}, expected {full[position]} "
           f"(frequency {freq!r}{', business days Monday to Friday' if business else ''})")
    if missing > observed:
        wrong = (f"{missing} {what} missing for {observed} observed, so the frequency {freq!r} looks wrong "
                 f"(dates misread, e.g. day and month swapped, or a wrong --freq); {_CHECK_READING}")
        if policy == "none":
            raise InputError(f"{name}: {label}{gap}; {wrong}")
        raise InputError(f"{name}: {label}refusing --fill {policy}: it would invent more rows than were read; "
                         f"{gap}; {wrong}")
    if policy == "none":
        raise InputError(
            f"{name}: {label}{gap}; {missing} {what} missing in all{' (holidays?)' if business else ''}. "
            "Fill them with --fill ffill|interpolate|zero, or set another --freq"
        )
    notes.append(f"{label}filled {missing} missing {what} ({policy})")
    frame = pd.DataFrame(series.values, index=times).reindex(full)
    return Series(series.id, full, frame.to_numpy(dtype=np.float64))


def check_freq(freq: str, times: pd.Index) -> str:
    """The user's --freq as a canonical alias, or an error: a positive step for integer times, else an offset."""
    if not isinstance(times, pd.DatetimeIndex):
        if not INTEGER.match(freq.strip()) or int(freq) < 1:
            raise InputError(f"--freq {freq!r}: the time column holds integer steps; give the step as a whole "
                             "number, e.g. --freq 1")
        if int(freq) >= 2**63:
            raise InputError(f"--freq {freq!r}: a step beyond what a 64-bit integer holds; give a smaller step")
        return str(int(freq))
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
        (pd.Timestamp("2000-01-01") + offset).as_unit("ns")  # one step must stay within nanosecond timestamps
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta)):
            raise InputError(f"--freq {freq!r}: a step longer than the timestamps can span (about 292 years); "
                             "give a smaller step") from None
        offset = None
    if offset is None or offset.n < 1:
        raise InputError(f"--freq {freq!r} is not a frequency for timestamps; use a pandas alias such as "
                         "h, D, B, W, MS or 15min")
    return offset.freqstr


def common_frequency(series: Panel, name: str) -> str:
    """The frequency of the panel's longest series (the first of them), which every series is then held to."""
    longest = series[int(np.argmax(np.diff(series.bounds)))]
    freq = infer_frequency(longest.times)
    if freq is None:
        if len(longest.times) < 2:
            raise InputError(f"{name}: only one row; a forecast needs a history of many rows")
        steps = np.diff(np.asarray(longest.times))
        values, counts = np.unique(steps, return_counts=True)
        usual = values[np.argmax(counts)]
        i = int(np.argmax(steps != usual))  # the first place the spacing breaks from the usual step
        usual = _step_alias(pd.Timedelta(usual))
        raise InputError(
            f"{name}: cannot infer a regular frequency from the timestamps of series {longest.id!r}: "
            f"the usual step is {usual!r}, but {longest.times[i]} is followed by {longest.times[i + 1]}; "
            "set it with --freq (e.g. h, D, B, W, MS) and --fill, or resample the data"
        )
    return freq


def season_length(freq: str) -> int:
    """The natural season of a frequency: a day for hourly and minute data (24, 96 for 15min), 7 for
    daily, 52 weekly, 12 monthly, 4 quarterly; 1 (no season) otherwise."""
    if freq.isdigit():
        return 1
    base = pd.tseries.frequencies.to_offset(freq)
    code = base.rule_code.split("-")[0].upper()
    n = getattr(base, "n", 1) or 1
    per_code = {"H": 24, "h": 24, "T": 1440, "MIN": 1440, "D": 7, "B": 5, "W": 52, "MS": 12, "ME": 12, "M": 12,
             "BMS": 12, "BME": 12, "QS": 4, "QE": 4, "Q": 4, "YS": 1, "YE": 1, "Y": 1, "S": 60}
    season = per_code.get(code, per_code.get(code.lower(), 1))
    return max(1, season // n) if season > 1 else 1


def seasons(freq: str) -> tuple[int, ...]:
    """Every season a frequency's data usually has, shortest first: the natural one (``season_length``),
    and for hourly and minute data the week beside the day (hourly 24 and 168, half-hourly 48 and 336);
    () when there is none. Window normalisation "deseason" removes each that fits its lookback twice."""
    season = season_length(freq)
    if season == 1:
        return ()
    code = pd.tseries.frequencies.to_offset(freq).rule_code.split("-")[0].upper()
    return (season, 7 * season) if code in ("H", "T", "MIN") else (season,)


def reads_as_regular(times: pd.DatetimeIndex, codes: np.ndarray | None, freq: str | None) -> bool:
    """Whether a reading of the dates (one day/month order) gives regular series: each series (rows
    coded by ``codes``) strictly increasing or decreasing in file order, and the longest on a grid
    where no more timestamps are missing than observed."""
    frame = pd.DataFrame({"id": codes if codes is not None else 0, "t": times})
    step = frame.groupby("id", sort=False)["t"].diff().dropna()
    if not ((step > pd.Timedelta(0)).all() or (step < pd.Timedelta(0)).all()):
        return False
    longest = frame["id"].value_counts().index[0]
    t = pd.DatetimeIndex(frame.loc[frame["id"] == longest, "t"]).sort_values()
    step_freq = check_freq(freq, t) if freq else infer_frequency(t)
    if step_freq is None:
        return False
    try:
        full = grid(t[0], t[-1], step_freq, len(t))
    except InputError:
        return False
    return t.difference(full).empty and len(full) - len(t) <= len(t)
