"""The official working-day calendar (วันทำการ) that SB-8-7's step limits are counted in.

Semantics, as ITSM tools count a service level:
- working time runs only inside office hours (08:30–16:30 Asia/Bangkok by default) on working
  days: Monday–Friday, minus the days off of government offices (วันหยุดราชการ) — the `holidays`
  package's Thai "public" and "government" days, with the substitution days and Cabinet extra days
  off it knows of, but without National Labour Day and its substitution day, on which government
  offices work — minus configured extra days off, plus configured extra working days;
- a limit of N working days is N full office days of working time; a clock started before opening
  counts from opening, one started after closing from the next working day's opening.
So one day started Monday 10:00 is due Tuesday 10:00; one started Friday 17:00 is due Monday 16:30.

`holidays` is exact only as far as its release knows (about early 2026 for Thailand): special days
off the Cabinet announces later go in the organisation file's `calendar.extra_days_off`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sb87.settings import organisation

BANGKOK = ZoneInfo("Asia/Bangkok")


# Days `holidays` files under "public" that are not days off for government offices (วันหยุดราชการ).
# Matched as substrings of the package's Thai names, so their substitution days ("ชดเชย…") go too.
# - National Labour Day (1 May): the package's own source notes "only observed by financial and
#   private sectors"; government offices work, and so on its substitution day.
# - National Children's Day: always the second Saturday of January with no substitution day; it is
#   an observance, not a day off, so a Saturday should not be explained to a person as a holiday.
NOT_GOVERNMENT_DAYS_OFF: tuple[str, ...] = ("วันแรงงานแห่งชาติ", "วันเด็กแห่งชาติ")


@cache
def _thai_holidays(year: int) -> dict[date, str]:
    """Government days off in `year` that the `holidays` package knows of, with their Thai names."""
    # "workday" observances are not days off; "public" + "government" are, minus the exclusions above.
    # Royal Ploughing Day is in "government" (the package's note: "only observed by government sectors").
    # Imported here: the package builds its lunisolar calendars on import (0.15 s), which every parse of
    # the request DAG paid although only a running step counts working days.
    import holidays

    calendar = holidays.TH(years=year, categories=("public", "government"), language="th")
    days_off: dict[date, str] = {}
    for day in calendar:
        # Two holidays can share a date (e.g. 5 December): drop only the excluded names, keep the rest.
        names = [n for n in calendar.get_list(day) if not any(x in n for x in NOT_GOVERNMENT_DAYS_OFF)]
        if names:
            days_off[day] = "; ".join(names)
    return days_off


@dataclass(frozen=True)
class WorkingCalendar:
    tz: ZoneInfo = BANGKOK
    opens: time = time(8, 30)
    closes: time = time(16, 30)
    extra_days_off: Mapping[date, str] = field(default_factory=dict)
    extra_working_days: frozenset[date] = frozenset()
    weekend: frozenset[int] = frozenset({5, 6})  # Saturday, Sunday (date.weekday numbers)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> WorkingCalendar:
        """From the organisation file's `calendar` section (see config/sb87.json)."""
        # "24:00" closes at the end of the day (a round-the-clock calendar, e.g. for tests).
        opens, closes = (
            time.max if t == "24:00" else time.fromisoformat(t) for t in raw.get("office_hours", ("08:30", "16:30"))
        )
        days_off = {}
        for entry in raw.get("extra_days_off", []):
            day, name = (entry, "วันหยุดพิเศษ") if isinstance(entry, str) else (entry["date"], entry["name"])
            days_off[date.fromisoformat(day)] = name
        return cls(
            tz=ZoneInfo(raw.get("timezone", "Asia/Bangkok")),
            opens=opens,
            closes=closes,
            extra_days_off=days_off,
            extra_working_days=frozenset(date.fromisoformat(d) for d in raw.get("extra_working_days", [])),
            weekend=frozenset(raw.get("weekend", (5, 6))),
        )

    @property
    def office_day(self) -> timedelta:
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def holiday_name(self, day: date) -> str | None:
        """The Thai name of the day off, or None on an ordinary day (weekends have no name)."""
        return self.extra_days_off.get(day) or _thai_holidays(day.year).get(day)

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        return day.weekday() not in self.weekend and self.holiday_name(day) is None

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (datetime.combine(day, self.opens, self.tz), datetime.combine(day, self.closes, self.tz))

    def _local(self, instant: datetime) -> datetime:
        if instant.tzinfo is None:
            raise ValueError(f"{instant!r} has no time zone: working time needs an aware instant")
        return instant.astimezone(self.tz)

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """The instant at which `days` working days counted from `start` have passed."""
        remaining = self.office_day * days
        current = self._local(start)
        while True:
            day = current.date()
            opening, closing = self._window(day)
            if self.is_working_day(day) and current < closing:
                current = max(current, opening)
                if remaining <= closing - current:
                    return current + remaining
                remaining -= closing - current
            current = self._window(day + timedelta(days=1))[0]

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Office time on working days between two instants (zero when `end` is not after `start`)."""
        a, b = self._local(start), self._local(end)
        total = timedelta()
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                opening, closing = self._window(day)
                lo, hi = max(a, opening), min(b, closing)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def working_days_between(self, start: datetime, end: datetime) -> float:
        return self.working_time_between(start, end) / self.office_day

    def fraction_used(self, start: datetime, limit_days: float, now: datetime) -> float:
        """How much of a limit of `limit_days` working days started at `start` is used at `now`."""
        return self.working_days_between(start, now) / limit_days

    def days_off_between(self, first: date, last: date) -> Iterable[tuple[date, str]]:
        """Named days off in a range, for explaining a due date to a person."""
        day = first
        while day <= last:
            if (name := self.holiday_name(day)) and day not in self.extra_working_days:
                yield day, name
            day += timedelta(days=1)


def default_calendar() -> WorkingCalendar:
    """The calendar of the organisation file (`SB87_CONFIG`)."""
    return WorkingCalendar.from_config(organisation().raw.get("calendar", {}))
