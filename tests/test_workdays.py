"""The working-day calendar against known Thai dates (from the `holidays` package, checked by hand)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sb87.timekeeping.workdays import WorkingCalendar

BKK = ZoneInfo("Asia/Bangkok")
CAL = WorkingCalendar()


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BKK)


@pytest.mark.parametrize(
    ("day", "name_part"),
    [
        (date(2026, 4, 13), "สงกรานต์"),
        (date(2026, 4, 14), "สงกรานต์"),
        (date(2026, 4, 15), "สงกรานต์"),
        (date(2027, 4, 13), "สงกรานต์"),  # fixed-date: known for 2027 although the package is exact to ~2026
        (date(2027, 4, 15), "สงกรานต์"),
        (date(2026, 1, 1), "ปีใหม่"),
        (date(2026, 1, 2), "วันหยุดพิเศษ"),  # Cabinet extra day off
        (date(2026, 12, 31), "สิ้นปี"),
        (date(2026, 6, 1), "ชดเชย"),  # substitution for Visakha Bucha on Sunday 31 May 2026
        (date(2026, 12, 7), "ชดเชย"),  # substitution for 5 December 2026 (a Saturday)
    ],
)
def test_known_days_off(day: date, name_part: str) -> None:
    assert not CAL.is_working_day(day)
    assert name_part in CAL.holiday_name(day)


def test_plain_weekdays_and_weekends() -> None:
    assert CAL.is_working_day(date(2026, 11, 24))  # a Tuesday
    assert not CAL.is_working_day(date(2026, 11, 28))  # Saturday
    assert CAL.holiday_name(date(2026, 11, 28)) is None  # weekends are not holidays


def test_one_day_limit_inside_the_week() -> None:
    assert CAL.add_working_days(at(2026, 11, 23, 10), 1) == at(2026, 11, 24, 10)


def test_limit_spanning_a_weekend() -> None:
    assert CAL.add_working_days(at(2026, 11, 27, 14), 1) == at(2026, 11, 30, 14)  # Fri → Mon
    assert CAL.add_working_days(at(2026, 11, 27, 14), 3) == at(2026, 12, 2, 14)  # Fri → Wed


def test_limit_started_after_and_before_office_hours() -> None:
    assert CAL.add_working_days(at(2026, 11, 27, 17), 1) == at(2026, 11, 30, 16, 30)  # Fri evening
    assert CAL.add_working_days(at(2026, 11, 24, 6), 1) == at(2026, 11, 24, 16, 30)  # before opening
    assert CAL.add_working_days(at(2026, 11, 28, 9), 1) == at(2026, 11, 30, 16, 30)  # on a Saturday


def test_songkran_pushes_the_due_date() -> None:
    # Friday 10 April 2026 + 3 days: Mon 13 – Wed 15 are Songkran, so Thu 16, Fri 17, Mon 20.
    assert CAL.add_working_days(at(2026, 4, 10, 10), 3) == at(2026, 4, 20, 10)


def test_new_year_and_its_extra_day_off() -> None:
    # Wednesday 31 Dec 2025 is a government day off in the package; 1 and 2 Jan 2026 are off too.
    assert CAL.add_working_days(at(2025, 12, 30, 9), 1) == at(2026, 1, 5, 9)


def test_configured_extra_day_off_and_extra_working_day() -> None:
    cal = WorkingCalendar.from_config(
        {
            "office_hours": ["08:30", "16:30"],
            "extra_days_off": [{"date": "2026-11-25", "name": "วันหยุดพิเศษตามมติคณะรัฐมนตรี"}],
            "extra_working_days": ["2026-11-28"],
        }
    )
    assert cal.holiday_name(date(2026, 11, 25)) == "วันหยุดพิเศษตามมติคณะรัฐมนตรี"
    assert cal.add_working_days(at(2026, 11, 24, 10), 1) == at(2026, 11, 26, 10)
    assert cal.is_working_day(date(2026, 11, 28))
    assert cal.add_working_days(at(2026, 11, 27, 10), 1) == at(2026, 11, 28, 10)


def test_working_time_between_across_a_weekend_and_a_holiday() -> None:
    # Fri 4 Dec 15:30 → Tue 8 Dec 9:30: Fri 1 h, Sat/Sun off, Mon 7 Dec substitution day off, Tue 1 h.
    assert CAL.working_time_between(at(2026, 12, 4, 15, 30), at(2026, 12, 8, 9, 30)) == timedelta(hours=2)
    assert CAL.working_time_between(at(2026, 12, 8), at(2026, 12, 4)) == timedelta(0)
    assert CAL.working_days_between(at(2026, 11, 23, 8, 30), at(2026, 11, 24, 16, 30)) == 2


def test_fraction_used_for_warnings() -> None:
    start = at(2026, 11, 24, 8, 30)
    assert CAL.fraction_used(start, 1, at(2026, 11, 24, 14, 30)) == pytest.approx(0.75)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        CAL.add_working_days(datetime(2026, 11, 24, 10), 1)


# --- Government days off, not the private sector's (issue 13 item 1) ---------------------------
# National Labour Day (1 May) and its substitution day are days off for private employees and banks
# only; government offices work. 2026: 1 May is a Friday and Monday 4 May is Coronation Day. 2027:
# 1 May is a Saturday (the package's substitution day is Monday 3 May) and Tuesday 4 May is Coronation Day.


@pytest.mark.parametrize("day", [date(2026, 5, 1), date(2027, 5, 3), date(2028, 5, 1)])
def test_labour_day_and_its_substitution_day_are_government_working_days(day: date) -> None:
    assert CAL.is_working_day(day)
    assert CAL.holiday_name(day) is None


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # Thursday 30 Apr 2026: Fri 1 May counts; Mon 4 May (Coronation Day) does not.
        (at(2026, 4, 30, 10), 1, at(2026, 5, 1, 10)),
        (at(2026, 4, 30, 10), 3, at(2026, 5, 6, 10)),  # Fri 1, (Mon 4 off), Tue 5, Wed 6
        # Friday 30 Apr 2027: Mon 3 May (Labour Day's substitution day) counts; Tue 4 May does not.
        (at(2027, 4, 30, 10), 1, at(2027, 5, 3, 10)),
        (at(2027, 4, 30, 10), 3, at(2027, 5, 6, 10)),  # Mon 3, (Tue 4 off), Wed 5, Thu 6
        # Started on the substitution day itself: the clock runs from the start, not from Wednesday.
        (at(2027, 5, 3, 10), 1, at(2027, 5, 5, 10)),
        (at(2027, 5, 3, 10), 3, at(2027, 5, 7, 10)),
        # Started before opening on 1 May 2026: the clock starts at 08:30 the same day.
        (at(2026, 5, 1, 7), 1, at(2026, 5, 1, 16, 30)),
    ],
)
def test_limits_around_labour_day_count_it_as_a_working_day(start: datetime, days: int, due: datetime) -> None:
    assert CAL.add_working_days(start, days) == due


def test_only_government_days_off_are_named_around_labour_day() -> None:
    # Used to explain a due date to a person: Coronation Day only, not Labour Day or its substitute.
    assert list(CAL.days_off_between(date(2027, 4, 30), date(2027, 5, 7))) == [(date(2027, 5, 4), "วันฉัตรมงคล")]
    assert list(CAL.days_off_between(date(2026, 4, 30), date(2026, 5, 8))) == [(date(2026, 5, 4), "วันฉัตรมงคล")]


def test_childrens_day_is_not_named_as_a_day_off() -> None:
    # Second Saturday of January: an observance on a weekend, so no name that would suggest a day off.
    assert CAL.holiday_name(date(2026, 1, 10)) is None
    assert CAL.holiday_name(date(2027, 1, 9)) is None


def test_shared_dates_keep_their_other_holidays() -> None:
    # Removing names is per holiday: 5 Dec and 12 Aug keep every other name on the same date.
    assert "วันพ่อแห่งชาติ" in CAL.holiday_name(date(2026, 12, 5))
    assert "วันแม่แห่งชาติ" in CAL.holiday_name(date(2027, 8, 12))
    assert not CAL.is_working_day(date(2027, 8, 12))  # a Thursday


def test_royal_ploughing_day_is_a_government_day_off() -> None:
    # Filed by the package under "government" (only government offices stop); Wednesday 13 May 2026.
    assert not CAL.is_working_day(date(2026, 5, 13))
    assert CAL.add_working_days(at(2026, 5, 12, 10), 1) == at(2026, 5, 14, 10)


def test_songkran_2027_pushes_one_and_three_day_limits() -> None:
    # Tue 13 – Thu 15 Apr 2027 are Songkran: a clock started Monday 12 April 10:00 resumes Friday.
    assert CAL.add_working_days(at(2027, 4, 12, 10), 1) == at(2027, 4, 16, 10)
    assert CAL.add_working_days(at(2027, 4, 12, 10), 3) == at(2027, 4, 20, 10)  # Fri 16, Mon 19, Tue 20


def test_configured_extra_days_off_around_labour_day_2027() -> None:
    # The package stops at 2026 for Royal Ploughing Day and Cabinet bridge days: the organisation
    # file supplies them. Here a Cabinet day off on Wednesday 5 May 2027 (and one given as a bare date).
    cal = WorkingCalendar.from_config(
        {"extra_days_off": [{"date": "2027-05-05", "name": "วันหยุดพิเศษตามมติคณะรัฐมนตรี"}, "2027-05-06"]}
    )
    assert cal.holiday_name(date(2027, 5, 6)) == "วันหยุดพิเศษ"
    assert cal.is_working_day(date(2027, 5, 3))  # still a working day for government offices
    assert cal.add_working_days(at(2027, 4, 30, 10), 1) == at(2027, 5, 3, 10)
    # Mon 3, (Tue 4 Coronation Day, Wed 5 and Thu 6 configured off), Fri 7, Mon 10.
    assert cal.add_working_days(at(2027, 4, 30, 10), 3) == at(2027, 5, 10, 10)
