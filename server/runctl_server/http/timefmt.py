"""Timestamps as the execution object API writes them: ISO 8601 in a requested IANA time zone, in UTC,
and for people.

    created_at         "2025-10-05T23:49:44-04:00"   (the zone asked for; UTC by default)
    created_at_utc     "2025-10-06T03:49:44Z"
    created_at_string  "Oct 05, 2025 11:49 pm EDT"

Whole seconds, as that API shows them. Month names are spelled here, not by strftime, so the server's
locale never changes an answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf import timestamp_pb2

from runctl_server.errors import InvalidArgument

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# IANA names are short ("America/Argentina/ComodRivadavia" is among the longest); longer is a typo or worse.
MAX_ZONE_NAME = 64


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(name: str | None, *, field: str = "timezone") -> tzinfo:
    """The IANA time zone `name` (e.g. "America/New_York"); UTC when empty; InvalidArgument if unknown."""
    if not name:
        return UTC
    if len(name) > MAX_ZONE_NAME or "\x00" in name:
        raise InvalidArgument.single(
            field, "is not an IANA time zone name such as America/New_York", reason="FIELD_INVALID"
        )
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument.single(
            field,
            f"unknown time zone {name!r}: use an IANA name such as America/New_York or UTC",
            reason="FIELD_INVALID",
        ) from None


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime, to the whole second."""
    return datetime.fromtimestamp(stamp.seconds, tz=UTC)


def iso_in(moment: datetime, where: tzinfo) -> str:
    """ISO 8601 with the zone's offset at that moment: "2025-10-05T23:49:44-04:00"."""
    return moment.astimezone(where).replace(microsecond=0).isoformat()


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z: "2025-10-06T03:49:44Z"."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def human(moment: datetime, where: tzinfo) -> str:
    """For people: "Oct 05, 2025 11:49 pm EDT" (12-hour clock, zero-padded, the zone's abbreviation)."""
    local = moment.astimezone(where)
    hour = local.hour % 12 or 12
    meridiem = "am" if local.hour < 12 else "pm"
    abbreviation = local.tzname() or iso_in(moment, where)[-6:]
    return (
        f"{MONTHS[local.month - 1]} {local.day:02d}, {local.year} "
        f"{hour:02d}:{local.minute:02d} {meridiem} {abbreviation}"
    )
