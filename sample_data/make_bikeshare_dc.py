"""Rebuild bikeshare_dc_hourly.csv from the ISLP package's bundled Bikeshare.csv (see README.md).

    pip download islp==0.6.0 --no-deps -d /tmp/pkgs
    python sample_data/make_bikeshare_dc.py /tmp/pkgs/islp-0.6.0-py3-none-any.whl sample_data/bikeshare_dc_hourly.csv

ISLP/data/Bikeshare.csv holds the 2011 hours of the UCI "Bike Sharing Dataset" (Fanaee-T and Gama
2014), Capital Bikeshare, Washington DC, one row per hour in which a bike was rented. What changes:
day of year and hour become one ISO timestamp (local clock time); the hours without a row get
rentals 0 (the source's smallest count at every hour of the day is 1), except the clock hour that
does not exist (2011-03-13 02:00, daylight saving), interpolated; an added hour takes its day's
holiday and workingday flags; the temperature returns from UCI's normalised scale (t = -8 + 47 x
temp), interpolated in time for the added hours. The output's sha256 is
7af68535381ebabaf537650f50dc4d462718da4deb2610e261cbb764f933a3fa.
"""

import sys
import zipfile

import numpy as np
import pandas as pd

MEMBER = "ISLP/data/Bikeshare.csv"


def main(wheel: str, out: str) -> None:
    with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as source:
        rows = pd.read_csv(source)
    day = pd.Timestamp("2011-01-01") + pd.to_timedelta(rows["day"] - 1, unit="D")
    rows["ds"] = day + pd.to_timedelta(rows["hr"].astype(int), unit="h")
    assert ((day.dt.day_of_week + 1) % 7 == rows["weekday"]).all()  # UCI counts weekdays from Sunday = 0
    rows = rows.set_index("ds")
    hours = pd.date_range("2011-01-01 00:00", "2011-12-31 23:00", freq="h", name="ds")
    frame = rows.reindex(hours)
    daylight_saving = pd.Timestamp("2011-03-13 02:00")
    rentals = frame["bikers"].fillna(0.0)
    rentals[daylight_saving] = np.nan
    rentals = rentals.interpolate(method="time").round().astype(int)
    flags = rows.groupby(rows.index.normalize())[["holiday", "workingday"]].first().reindex(hours.normalize())
    temperature = (-8 + 47 * frame["temp"]).interpolate(method="time").round(2)
    pd.DataFrame({
        "ds": hours.strftime("%Y-%m-%dT%H:%M:%S"),
        "holiday": flags["holiday"].astype(int).to_numpy(),
        "workingday": flags["workingday"].astype(int).to_numpy(),
        "observed_temp_c": temperature.to_numpy(),
        "rentals": rentals.to_numpy(),
    }).to_csv(out, index=False, lineterminator="\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
