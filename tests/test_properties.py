"""Property tests for the CSV reader and writer (contract: "arbitrary text/bytes either load or raise
SeqcastError, never anything else; write -> read round-trips are lossless").

Examples per run: BYTES_EXAMPLES + TEXT_EXAMPLES + CONFIG_EXAMPLES + ROUND_TRIP_EXAMPLES (see below).
"""

import io
import math

import numpy as np
import pandas as pd
from hypothesis import example, HealthCheck, given, settings
from hypothesis import strategies as st

from seqcast.data import DataConfig, series_from_text, write_csv
from seqcast.data.source import decode
from seqcast.errors import SeqcastError

BYTES_EXAMPLES = 300
TEXT_EXAMPLES = 300
CONFIG_EXAMPLES = 150
ROUND_TRIP_EXAMPLES = 150
QUICK = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def load_or_refuse(data: bytes | str, config: DataConfig = DataConfig()) -> None:
    """Read like `seqcast fit` does; anything but success or a SeqcastError fails the property."""
    try:
        text = decode("prop.csv", data) if isinstance(data, bytes) else data
        series = series_from_text("prop.csv", text, config)
    except SeqcastError as exc:
        assert exc.exit_code == 2
        assert str(exc).strip()
        return
    assert series.series and series.targets
    for s in series.series:
        assert len(s.times) == len(s.values) >= 1
        assert np.isfinite(s.values).all()


@settings(max_examples=BYTES_EXAMPLES, **QUICK)
@given(st.one_of(st.binary(max_size=400),
                 st.lists(st.sampled_from([b"timestamp", b"value", b",", b";", b"\t", b"\n", b"\r\n", b'"',
                                           b"2024-01-01 00:00", b"2024-01-01", b"1.5", b"-3", b"", b"NaN",
                                           b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\xfc", b"1,000.5", b"inf"]),
                          max_size=60).map(b"".join)))
def test_arbitrary_bytes_load_or_raise_seqcast_error(data):
    load_or_refuse(data)


FIELD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["", " ", "NA", "null", "?", "-", "1,5", "1.000,5", "1,000", "1e400", "0x10", "abc", '"',
                     '""', "2024-02-30", "2024-01-01 25:00", "12/31/2024", "31.12.2024", "2024-01-01T00:00Z",
                     "2024-01-01 00:00+01:00", "zürich", "東京", "\t", "\r"]),
    st.datetimes(min_value=pd.Timestamp("1700-01-01").to_pydatetime(),
                 max_value=pd.Timestamp("2200-01-01").to_pydatetime()).map(str),
    st.text(max_size=8),
)


@st.composite
def csv_text(draw):
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = draw(st.integers(1, 4))
    header = draw(st.lists(st.sampled_from(["timestamp", "ds", "date", "value", "y", "unique_id", "id", "x", "",
                                            "Value", "step"]) | st.text(max_size=5), min_size=width,
                           max_size=width))
    n = draw(st.integers(0, 30))
    regular = draw(st.booleans())
    rows = []
    for i in range(n):
        fields = draw(st.lists(FIELD, min_size=max(0, width - 1), max_size=width + 1))
        if regular and "timestamp" in header:  # often a well-formed time column, so deeper code runs
            fields = fields + [""] * (width - len(fields))
            fields[header.index("timestamp")] = str(pd.Timestamp("2024-01-01") + pd.Timedelta(hours=i))
        rows.append(delimiter.join(fields))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join([delimiter.join(header), *rows]) + draw(st.sampled_from(["", newline]))


@settings(max_examples=TEXT_EXAMPLES, **QUICK)
@given(csv_text())
@example(text="\n0.0,1.0\n-1,0.0\n2024-01-01T00:00Z,0.0")  # naive and zoned stamps while guessing the time column
@example(text="timestamp\n9223372036854775808")  # an integer step past 64 bits (pandas 2 overflows converting it)
@example(text="0\r0")  # a carriage return inside the header line, which the csv module will not split
def test_csv_shaped_text_loads_or_raises_seqcast_error(text):
    load_or_refuse(text)


@st.composite
def regular_csv(draw):
    """A well-formed series (so options reach frequency checks, gaps and fills), lightly damaged."""
    n = draw(st.integers(1, 40))
    kind = draw(st.sampled_from(["h", "D", "MS", "15min", "int"]))
    times = [str(i * 3) for i in range(n)] if kind == "int" else \
        [str(t) for t in pd.date_range("2024-01-01", periods=n, freq=kind)]
    ids = draw(st.sampled_from([None, ["a"], ["a", "zürich"]]))
    lines = [",".join(([sid] if sid else []) + [t, repr(draw(st.floats(-1e6, 1e6)))])
             for sid in ids or [None] for t in times]
    if lines and draw(st.booleans()):  # damage: drop rows (gaps), blank or spoil a value
        drop = draw(st.lists(st.integers(0, len(lines) - 1), max_size=3, unique=True))
        spoil = draw(st.lists(st.integers(0, len(lines) - 1), max_size=2, unique=True))
        bad = draw(st.sampled_from(["", "NaN", "x"]))
        lines = [line.rsplit(",", 1)[0] + "," + bad if i in spoil else line
                 for i, line in enumerate(lines) if i not in drop]
    return ",".join((["unique_id"] if ids else []) + ["timestamp", "value"]) + "\n" + "\n".join(lines) + "\n"


@settings(max_examples=CONFIG_EXAMPLES, **QUICK)
@given(st.one_of(regular_csv(), csv_text()), st.builds(DataConfig,
                             time_col=st.sampled_from([None, None, "timestamp", "value", "nope"]),
                             target=st.sampled_from([(), (), ("value",), ("timestamp",), ("value", "x"), ("nope",)]),
                             id_col=st.sampled_from([None, None, "unique_id", "timestamp"]),
                             freq=st.sampled_from([None, "h", "D", "MS", "1", "3", "0", "-1", "bogus", "15min",
                                                   "1us", "-1h", "W"]),
                             fill=st.sampled_from(["none", "ffill", "interpolate", "zero"])))
def test_any_options_load_or_raise_seqcast_error(text, config):
    load_or_refuse(text, config)


@settings(max_examples=ROUND_TRIP_EXAMPLES, **QUICK)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=40),
       st.sampled_from(["main", "zürich", "a,b", 'quo"te', "東京"]))
def test_written_forecast_reads_back_losslessly(values, series_id):
    n = len(values)
    frame = pd.DataFrame({"series": series_id, "timestamp": pd.date_range("2024-01-01", periods=n, freq="h"),
                          "step": np.arange(1, n + 1), "model": "gru", "target": "value", "forecast": values})
    # round_trip: pandas 2's default float parser can miss the last digit that pandas 3's reads exactly
    back = pd.read_csv(io.BytesIO(write_csv(frame)), keep_default_na=False, na_values=[""], float_precision="round_trip")
    assert list(back.columns) == list(frame.columns)
    assert back["series"].astype(str).tolist() == [series_id] * n
    assert back["step"].tolist() == list(range(1, n + 1))
    for got, want in zip(back["forecast"].astype(float), values):
        assert (math.isnan(got) and math.isnan(want)) or (got == want and math.copysign(1, got) == math.copysign(1, want))
