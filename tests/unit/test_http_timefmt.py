"""The execution object API's timestamps: ISO 8601 in a requested zone, in UTC with a Z, and the human
string."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from runctl_server.errors import InvalidArgument
from runctl_server.http import timefmt

# The API's documented example: created 2025-10-06 03:49:44 UTC, shown in New York (EDT, UTC-4).
DOCUMENTED_MOMENT = datetime(2025, 10, 6, 3, 49, 44, 654321, tzinfo=UTC)
NEW_YORK = "America/New_York"


def test_the_documented_example_renders_exactly() -> None:
    where = timefmt.zone(NEW_YORK)
    assert timefmt.iso_in(DOCUMENTED_MOMENT, where) == "2025-10-05T23:49:44-04:00"
    assert timefmt.iso_utc(DOCUMENTED_MOMENT) == "2025-10-06T03:49:44Z"
    assert timefmt.human(DOCUMENTED_MOMENT, where) == "Oct 05, 2025 11:49 pm EDT"


def test_utc_is_the_default_zone() -> None:
    for name in (None, ""):
        where = timefmt.zone(name)
        assert timefmt.iso_in(DOCUMENTED_MOMENT, where) == "2025-10-06T03:49:44+00:00"
        assert timefmt.human(DOCUMENTED_MOMENT, where) == "Oct 06, 2025 03:49 am UTC"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # winter: EST, UTC-5
        (datetime(2025, 1, 15, 17, 5, tzinfo=UTC), "Jan 15, 2025 12:05 pm EST"),
        # midnight and noon on a 12-hour clock
        (datetime(2025, 7, 4, 4, 0, tzinfo=UTC), "Jul 04, 2025 12:00 am EDT"),
        (datetime(2025, 7, 4, 16, 30, tzinfo=UTC), "Jul 04, 2025 12:30 pm EDT"),
        (datetime(2025, 12, 31, 14, 1, tzinfo=UTC), "Dec 31, 2025 09:01 am EST"),
        # the hour before and after the spring change (2025-03-09 07:00 UTC)
        (datetime(2025, 3, 9, 6, 59, tzinfo=UTC), "Mar 09, 2025 01:59 am EST"),
        (datetime(2025, 3, 9, 7, 0, tzinfo=UTC), "Mar 09, 2025 03:00 am EDT"),
    ],
)
def test_human_strings_in_new_york(moment: datetime, expected: str) -> None:
    assert timefmt.human(moment, timefmt.zone(NEW_YORK)) == expected


def test_offsets_follow_daylight_saving() -> None:
    where = timefmt.zone(NEW_YORK)
    assert timefmt.iso_in(datetime(2025, 1, 15, 17, 5, tzinfo=UTC), where) == "2025-01-15T12:05:00-05:00"
    assert timefmt.iso_in(datetime(2025, 7, 4, 16, 30, tzinfo=UTC), where) == "2025-07-04T12:30:00-04:00"


def test_other_zones_and_zones_without_an_abbreviation() -> None:
    moment = datetime(2025, 10, 6, 3, 49, 44, tzinfo=UTC)
    assert timefmt.human(moment, timefmt.zone("Asia/Kolkata")) == "Oct 06, 2025 09:19 am IST"
    assert timefmt.iso_in(moment, timefmt.zone("Asia/Kolkata")) == "2025-10-06T09:19:44+05:30"
    # tzdata spells some zones' abbreviations as their offset
    assert timefmt.human(moment, timefmt.zone("Asia/Dubai")).endswith("07:49 am +04")


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "utc ", "a" * 300, "New\x00York"]
)
def test_unknown_zones_are_invalid_arguments(name: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        timefmt.zone(name)
    assert [v.field for v in error.value.violations] == ["timezone"]


def test_timestamps_are_read_to_the_second() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1759722584, nanos=999_000_000)
    assert timefmt.from_timestamp(stamp) == datetime(2025, 10, 6, 3, 49, 44, tzinfo=UTC)
