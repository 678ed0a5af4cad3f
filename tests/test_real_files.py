"""Issue 20: files in the shapes real exports have (tests/real_files/), read right or refused with a
message that says what to do. Each test failed on the reader before the fix.

decimal separator (item 1), day/month order and implausible gaps (item 2), calendars: business
days, minutes, plain years (item 7), panels and year/period tables (item 8), and the resolved
reading fed back as a DataConfig (what predict does with a checkpoint's record).
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.data import DataConfig, future_times, load_series, season_length, series_from_text, write_csv
from seqcast.errors import InputError

FILES = Path(__file__).parent / "real_files"


def load(name: str, **config) -> "SeriesSet":  # noqa: F821
    return load_series(str(FILES / name), DataConfig(**config))


def dates(series) -> list[str]:
    return [str(t.date()) for t in series.times]


def refused(name: str, **config) -> str:
    with pytest.raises(InputError) as info:
        load(name, **config)
    message = str(info.value)
    assert message.startswith(str(FILES / name)), "the message names the file"
    return message


# item 1: the decimal separator comes from the numbers, never from the delimiter


def test_tsv_values_with_three_decimals_are_not_read_as_thousands():
    data = load("airline_passengers.tsv", target=("Passengers", "Revenue"))
    values = data.series[0].values
    assert values[:3].tolist() == [[340.007, 2710.349], [318.396, 2740.56], [362.785, 2770.771]]
    assert values[17].tolist() == [472.62, 3115.936]
    assert data.decimal == "." and data.freq == "MS" and data.notes == []


def test_european_export_reads_grouped_decimal_commas():
    data = load("european_monthly.csv", target=("Umsatz", "Menge"))
    assert data.decimal == ","
    assert data.series[0].values[:3].tolist() == [[1180.0, 40.0], [1238.5, 41.0], [1297.0, 42.0]]
    assert data.series[0].values[-1].tolist() == [2711.5, 75.0]


def test_ambiguous_dots_read_as_decimal_points_with_a_note_naming_column_value_and_flag():
    data = load("semicolon_ambiguous.csv")
    assert data.series[0].values[:3, 0].tolist() == [1.25, 2.267, 3.284]
    assert data.decimal == "."
    (note,) = data.notes
    assert "column 'price'" in note and "'1.250' as 1.250 (a decimal point), not 1250" in note
    assert "pass --decimal ," in note
    forced = load("semicolon_ambiguous.csv", decimal=",")
    assert forced.series[0].values[:3, 0].tolist() == [1250.0, 2267.0, 3284.0] and forced.notes == []


def test_ambiguous_comma_reads_as_thousands_with_a_note():
    text = "date;amount\n" + "".join(f"2024-01-{d:02d};{d},500\n" for d in range(1, 11))
    data = series_from_text("t.csv", text)
    assert data.series[0].values[:2, 0].tolist() == [1500.0, 2500.0]
    assert "'1,500' as 1500 (a comma grouping thousands), not 1.500 (a decimal comma)" in data.notes[0]


def test_columns_that_disagree_on_the_decimal_separator_are_an_error_naming_both():
    text = "date;price;qty\n2024-01-01;1,5;2.25\n2024-01-02;1,75;3.5\n2024-01-03;2,0;4.75\n"
    with pytest.raises(InputError, match=r"column 'price' has decimal commas \(line 2: '1,5'\) but column 'qty' has "
                                         r"decimal points \(line 2: '2.25'\); say which the file uses with --decimal"):
        series_from_text("t.csv", text)
    assert series_from_text("t.csv", text, DataConfig(target=("price",), decimal=",")).series[0].values[:, 0].tolist() \
        == [1.5, 1.75, 2.0]


def test_a_value_that_contradicts_the_given_decimal_is_an_error_naming_line_column_value():
    text = "date,value\n2024-01-01,1.5\n2024-01-02,\"2,5\"\n2024-01-03,3.5\n"
    with pytest.raises(InputError, match=r"t.csv: line 3, column 'value': '2,5' reads only with a decimal comma.*"
                                         r"the decimal separator is '\.' \(given with --decimal, or as the checkpoint recorded it\)"):
        series_from_text("t.csv", text, DataConfig(decimal="."))
    with pytest.raises(InputError, match=r"line 2, column 'value': '1.5' reads only with a decimal point.*"
                                         r"the decimal separator is ',' \(given with --decimal"):
        series_from_text("t.csv", text, DataConfig(decimal=","))


# item 2: day/month order from the whole column; no filling of a grid the data cannot be on


def test_european_monthly_dates_are_read_day_first_with_a_note():
    data = load("european_monthly.csv", target=("Umsatz",))
    assert data.freq == "MS" and data.dayfirst is True
    assert dates(data.series[0])[:3] == ["2019-01-01", "2019-02-01", "2019-03-01"]
    assert dates(data.series[0])[-1] == "2021-12-01"
    (note,) = [n for n in data.notes if "Datum" in n]
    assert "'01.02.2019' day first (2019-02-01)" in note
    assert "pass --monthfirst or --date-format '%m.%d.%Y'" in note


def test_us_monthly_dates_are_read_month_first_with_a_note():
    data = load("us_monthly.csv")
    assert data.freq == "MS" and data.dayfirst is False
    assert dates(data.series[0])[:2] == ["2022-01-01", "2022-02-01"]
    assert "'02/01/2022' month first (2022-02-01)" in data.notes[0] and "--dayfirst" in data.notes[0]


def test_a_day_above_12_settles_day_first_without_a_note():
    data = load("weather_daily.csv")
    assert data.dayfirst is True and data.freq == "D" and data.notes == []
    assert dates(data.series[0])[12:14] == ["2024-01-13", "2024-01-14"]
    assert data.series[0].values[:3, 0].tolist() == [-3.0, 4.1, 0.2]


def test_misread_month_first_dates_are_refused_instead_of_filled():
    message = refused("european_monthly.csv", dayfirst=False)
    assert "gap after 2019-01-12 00:00:00" in message
    assert "707 timestamps missing for 36 observed, so the frequency 'D' looks wrong" in message
    assert "--dayfirst or --monthfirst" in message and "--fill" not in message
    message = refused("european_monthly.csv", dayfirst=False, fill="ffill")
    assert "refusing --fill ffill: it would invent more rows than were read" in message
    assert "looks wrong" in message


def test_date_format_overrides_inference_and_names_a_value_that_does_not_match():
    data = load("european_monthly.csv", target=("Umsatz",), date_format="%d.%m.%Y")
    assert dates(data.series[0])[:2] == ["2019-01-01", "2019-02-01"]
    assert data.date_format == "%d.%m.%Y" and data.dayfirst is None
    assert not any("day first" in n for n in data.notes)
    message = refused("european_monthly.csv", date_format="%Y-%m-%d")
    assert "line 2, column 'Datum': '01.01.2019' does not match --date-format '%Y-%m-%d'" in message


def test_day_month_order_that_nothing_settles_is_an_error_asking_for_a_flag():
    text = "date,value\n" + "".join(f"{d:02d}.01.2024,{d}\n" for d in range(1, 13))  # 12 days, or 12 months
    with pytest.raises(InputError, match=r"column 'date': cannot tell whether '02.01.2024' is day first or month "
                                         r"first \(both orders give a regular series\); pass --dayfirst, --monthfirst "
                                         r"or --date-format '%d.%m.%Y'"):
        series_from_text("t.csv", text)
    assert series_from_text("t.csv", text, DataConfig(dayfirst=True)).freq == "D"
    assert series_from_text("t.csv", text, DataConfig(dayfirst=False)).freq == "MS"


def test_day_first_and_month_first_in_one_column_is_an_error_naming_a_line_of_each():
    text = "date,value\n13.01.2024,1\n14.01.2024,2\n01.15.2024,3\n"
    with pytest.raises(InputError, match=r"column 'date' has dates day first \(line 2: '13.01.2024'\) and month first "
                                         r"\(line 4: '01.15.2024'\)"):
        series_from_text("t.csv", text)


def test_a_date_that_contradicts_the_given_order_names_line_column_value():
    with pytest.raises(InputError, match=r"line 14, column 'date': cannot read '13/01/2024' as a date month first"):
        load("weather_daily.csv", dayfirst=False)


def test_no_per_value_guessing_mixes_day_and_month_order():
    text = "date,value\n1 2 24,1\n13 2 24,2\n"  # no format pandas can guess: each value alone would swap silently
    with pytest.raises(InputError, match=r"line 2, column 'date': '1 2 24' reads as 2024-01-02 00:00:00 month first "
                                         r"but 2024-02-01 00:00:00 day first; give the format with --date-format"):
        series_from_text("t.csv", text)
    spaced = series_from_text("t.csv", "date,value\n1 2 2024,1\n13 2 2024,2\n")  # a guessable format, both orders
    assert spaced.dayfirst is True and dates(spaced.series[0]) == ["2024-02-01", "2024-02-13"]


def test_iso_dates_have_no_day_month_order():
    assert load("meter_15min.csv", fill="interpolate").dayfirst is None


# item 7: calendars pandas knows


def test_trading_days_are_business_days_and_holidays_are_few_gaps():
    message = refused("trading_days.csv")
    assert ("gap after 2024-01-12 00:00:00: next timestamp is 2024-01-16 00:00:00, expected 2024-01-15 00:00:00 "
            "(frequency 'B', business days Monday to Friday); 2 business days missing in all (holidays?). "
            "Fill them with --fill ffill") in message
    data = load("trading_days.csv", fill="ffill", target=("Close",))
    series = data.series[0]
    assert data.freq == "B" and season_length(data.freq) == 5 and len(series.times) == 49
    assert "filled 2 missing business days (ffill)" in data.notes
    holiday = list(series.times).index(pd.Timestamp("2024-01-15"))
    assert series.values[holiday, 0] == series.values[holiday - 1, 0] == 183.53
    assert [str(t.date()) for t in future_times(series.times[-1], data.freq, 3)] == \
        ["2024-03-11", "2024-03-12", "2024-03-13"]  # 2024-03-08 is a Friday


def test_business_days_at_a_fixed_time_of_day():
    text = "".join(f"{d:%Y-%m-%d} 09:30,{i}\n" for i, d in enumerate(pd.bdate_range("2024-01-02", periods=12)))
    assert series_from_text("t.csv", "time,price\n" + text).freq == "B"


def test_fifteen_minute_data_with_a_missing_reading():
    message = refused("meter_15min.csv")
    assert "expected 2024-05-06 05:00:00 (frequency '15min'); 1 timestamp missing in all. Fill them" in message
    data = load("meter_15min.csv", fill="interpolate")
    assert data.freq == "15min" and season_length(data.freq) == 96 and len(data.series[0].times) == 48
    assert data.series[0].values[20, 0] == pytest.approx(0.275)


def test_plain_years_become_yearly_dates_with_a_note():
    data = load("nile_yearly.csv")
    series = data.series[0]
    assert data.freq == "YS-JAN" and isinstance(series.times, pd.DatetimeIndex)
    assert dates(series)[:2] == ["1871-01-01", "1872-01-01"] and series.values[:3, 0].tolist() == [1120, 1160, 963]
    assert data.notes == ["column 'year' holds years: read as yearly dates (1871 -> 1871-01-01), so forecasts carry "
                          "dates; --freq 1 keeps them plain numbers"]
    future = future_times(series.times[-1], data.freq, 2)
    assert write_csv(pd.DataFrame({"timestamp": future})) == b"timestamp\n1901-01-01\n1902-01-01\n"
    kept = load("nile_yearly.csv", freq="1")
    assert kept.integer_time and kept.freq == "1" and list(kept.series[0].times[:2]) == [1871, 1872]


def test_daily_data_with_a_gap_is_daily_not_24h():
    text = "date,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 21) if d != 9)
    with pytest.raises(InputError, match=r"\(frequency 'D'\); 1 timestamp missing in all"):
        series_from_text("t.csv", text)


# item 8: panels keyed by another column, and year/period tables


def test_stock_panel_keyed_by_symbol_is_detected():
    data = load("stock_panel.csv")
    assert data.id_col == "symbol" and [s.id for s in data.series] == ["AAPL", "MSFT", "NVDA"]
    assert data.freq == "B" and data.series[1].values[:2, 0].tolist() == [370.87, 371.22]
    assert "series id column: symbol (3 series; choose another with --id-col)" in data.notes


def test_repeated_timestamps_name_the_column_that_would_make_them_unique():
    message = refused("returns_panel.csv")
    assert ("timestamp 2023-01-31 00:00:00 appears twice (lines 2 and 3); column 'permno' would make the "
            "timestamps unique: pass --id-col permno") in message
    data = load("returns_panel.csv", id_col="permno")
    assert [s.id for s in data.series] == ["10107", "14593"] and data.freq == "ME"


def test_year_and_quarter_columns_combine_into_quarter_starts():
    data = load("gdp_year_quarter.csv")
    assert data.time_col == "year,quarter" and data.freq == "QS-JAN" and data.targets == ["gdp"]
    assert dates(data.series[0])[:5] == ["2014-01-01", "2014-04-01", "2014-07-01", "2014-10-01", "2015-01-01"]
    assert data.series[0].values[3, 0] == 17345.0
    assert "columns 'year' and 'quarter' combined into quarter-start dates (2014 Q1 -> 2014-01-01)" in data.notes[0]
    again = load("gdp_year_quarter.csv", time_col=data.time_col)
    assert again.time_col == "year,quarter" and again.series[0].times.equals(data.series[0].times)


def test_year_alone_as_time_column_points_at_the_quarter_column():
    message = refused("gdp_year_quarter.csv", time_col="year")
    assert "appears twice (lines 2 and 3); column 'quarter' holds the period within the year: pass --time-col " \
           "year,quarter" in message


def test_year_and_month_columns_combine_into_month_starts():
    data = load("sales_year_month.csv")
    assert data.time_col == "Year,Month" and data.freq == "MS"
    assert dates(data.series[0])[10:13] == ["2021-11-01", "2021-12-01", "2022-01-01"]
    assert data.series[0].values[10:13, 0].tolist() == [420.0, 424.0, 348.0]


def test_a_bad_quarter_names_line_column_value():
    text = "year,quarter,gdp\n2020,1,1.5\n2020,5,2.5\n"
    with pytest.raises(InputError, match=r"line 3, column 'quarter': '5' is not a quarter \(1-4 or Q1-Q4\)"):
        series_from_text("t.csv", text, DataConfig(time_col="year,quarter"))


# the resolved reading, given back, reads the same: what a checkpoint records for predict


@pytest.mark.parametrize("name,config", [
    ("airline_passengers.tsv", {"target": ("Passengers", "Revenue")}),
    ("european_monthly.csv", {"target": ("Umsatz",)}),
    ("european_monthly.csv", {"target": ("Umsatz",), "date_format": "%d.%m.%Y"}),
    ("semicolon_ambiguous.csv", {}),
    ("us_monthly.csv", {}),
    ("weather_daily.csv", {}),
    ("trading_days.csv", {"fill": "ffill"}),
    ("gdp_year_quarter.csv", {}),
])
def test_resolved_reading_fed_back_reads_identically(name, config):
    first = load(name, **config)
    config = DataConfig(**config)
    again = load_series(str(FILES / name), replace(config, time_col=first.time_col, target=tuple(first.targets),
                                                   decimal=first.decimal, dayfirst=first.dayfirst,
                                                   date_format=first.date_format))
    assert (again.decimal, again.dayfirst, again.date_format, again.freq, again.time_col) == \
        (first.decimal, first.dayfirst, first.date_format, first.freq, first.time_col)
    for a, b in zip(first.series, again.series, strict=True):
        assert a.times.equals(b.times) and np.array_equal(a.values, b.values)


def test_a_new_file_too_short_to_settle_anything_reads_like_the_training_file():
    trained = load("european_monthly.csv", target=("Umsatz",))
    recorded = DataConfig(target=("Umsatz",), decimal=trained.decimal, dayfirst=trained.dayfirst)
    new = "Datum;Umsatz\n01.01.2022;1.250\n01.02.2022;1.300\n01.03.2022;1.350\n"  # dates and numbers read two ways
    data = series_from_text("new.csv", new, recorded)
    assert dates(data.series[0]) == ["2022-01-01", "2022-02-01", "2022-03-01"]
    assert data.series[0].values[:, 0].tolist() == [1250.0, 1300.0, 1350.0] and data.notes == []
