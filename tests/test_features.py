"""Tests of ``reprotrain.features``' date rule: parsing with a format and the derived parts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprotrain.features import date_features, date_parts, parse_dates


def test_dates_parse_with_their_format_and_missing_markers_are_missing():
    values = pd.Series(["04.03.2015 13:45", "NA", None, " 29.02.2016 00:00 ", "?"])
    dates = parse_dates(values, "when", "%d.%m.%Y %H:%M")
    assert dates.tolist()[0] == pd.Timestamp(2015, 3, 4, 13, 45)
    assert dates.tolist()[3] == pd.Timestamp(2016, 2, 29)
    assert dates.isna().tolist() == [False, True, True, False, True]


def test_parts_of_known_dates_a_leap_day_a_time_of_day_and_a_missing_date():
    dates = parse_dates(
        pd.Series(["2016-02-29", "2015-12-31 18:00", "2016-12-31", None, "2015-01-01"]),
        "d",
        "ISO8601",
    )
    parts = date_parts(dates, "d")
    assert list(parts) == ["d.time", "d.month", "d.day_of_week", "d.day_of_year", "d.hour"]
    assert all(v.dtype == np.float32 for v in parts.values())
    nan = float("nan")
    np.testing.assert_array_equal(parts["d.month"], [2, 12, 12, nan, 1])
    np.testing.assert_array_equal(parts["d.day_of_week"], [0, 3, 5, nan, 3])  # 0 is Monday
    np.testing.assert_array_equal(parts["d.day_of_year"], [60, 365, 366, nan, 1])
    np.testing.assert_array_equal(parts["d.hour"], [0, 18, 0, nan, 0])
    # years: the leap year has 366 days; 18:00 is three quarters of a day
    expected = [2016 + 59 / 366, 2015 + 364.75 / 365, 2016 + 365 / 366, nan, 2015.0]
    np.testing.assert_allclose(parts["d.time"], np.float32(expected), rtol=0)


def test_hour_is_dropped_only_when_no_date_has_a_time_of_day():
    midnight = parse_dates(pd.Series(["2012/01/01", "2012/06/30", None]), "d", "%Y/%m/%d")
    assert list(date_features(midnight, "d")) == [
        "d.time",
        "d.month",
        "d.day_of_week",
        "d.day_of_year",
    ]
    minutes = parse_dates(
        pd.Series(["2012/01/01 00:00", "2012/01/01 00:30"]), "d", "%Y/%m/%d %H:%M"
    )
    features = date_features(minutes, "d")
    np.testing.assert_array_equal(features["d.hour"], [0.0, 0.5])


def test_a_value_that_does_not_read_is_an_error_naming_column_format_and_values():
    values = pd.Series(["2012/01/01", "2012-01-02", "soon", "NA", *[f"x{i}" for i in range(9)]])
    with pytest.raises(ValueError) as err:
        parse_dates(values, "day", "%Y/%m/%d")
    message = str(err.value)
    assert "date column 'day'" in message and "'%Y/%m/%d'" in message
    assert "11 value(s)" in message and "['2012-01-02', 'soon', 'x0', 'x1', 'x2']" in message
