"""Thai official style of times, schedules and numbers, in the memos' filters and the e-mails."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from test_documents import result_context, sample_request

from sb87.notices.messages import macros, render_notice
from sb87.settings import organisation
from sb87.timekeeping.thai_dates import thai_date_short, thai_datetime, thai_digits, thai_schedule, thai_time

SCHEDULES = {
    "daily 01:00": "ทุกวัน เวลา 01.00 น.",
    "daily 23:30": "ทุกวัน เวลา 23.30 น.",
    "weekly mon 02:30": "ทุกวันจันทร์ เวลา 02.30 น.",
    "weekly sun 00:05": "ทุกวันอาทิตย์ เวลา 00.05 น.",
    "monthly 1 03:00": "ทุกวันที่ 1 ของเดือน เวลา 03.00 น.",
    "monthly 28 22:15": "ทุกวันที่ 28 ของเดือน เวลา 22.15 น.",
}


@pytest.mark.parametrize(("schedule", "words"), sorted(SCHEDULES.items()))
def test_schedules_read_in_words_in_memos_and_emails_alike(schedule: str, words: str) -> None:
    assert thai_schedule(schedule) == words
    assert str(macros().schedule_th(schedule)) == words


@pytest.mark.parametrize("odd", ["hourly", "daily", "weekly xyz 01:00", "ทุกวัน 01.00 น."])
def test_a_schedule_in_no_known_form_is_shown_as_given(odd: str) -> None:
    assert thai_schedule(odd) == odd
    assert str(macros().schedule_th(odd)) == odd


def test_times_read_with_a_full_stop_and_na() -> None:
    assert thai_time("01:00") == "01.00 น."
    assert thai_time(datetime(2026, 11, 24, 3, 30, tzinfo=UTC)) == "10.30 น."  # Bangkok time
    assert str(macros().time_th("7:05")) == "07.05 น."
    assert thai_date_short(datetime(2026, 11, 24, 3, 30, tzinfo=UTC)) == "24 พ.ย. 2569 เวลา 10.30 น."
    assert thai_datetime(datetime(2026, 11, 24, 3, 30, tzinfo=UTC)) == "24 พฤศจิกายน 2569 เวลา 10.30 น."
    assert thai_date_short("2026-11-24") == "24 พ.ย. 2569"


def test_thai_digits() -> None:
    assert thai_digits(2569) == "๒๕๖๙"
    assert thai_digits("ข้อ 10.") == "ข้อ ๑๐."


@pytest.mark.parametrize("kind", ["result", "rejection"])
def test_emails_write_times_and_schedules_the_thai_way(kind: str) -> None:
    context = result_context(sample_request())
    context["memo"] = {"number": f"{organisation()['letter_code']}/1234", "date": context["today"], "path": "x.pdf"}
    context["decision"]["reason"] = "ข้อมูลเกินพื้นที่"
    notice = render_notice(kind, context)
    for text in (notice.subject, notice.text, notice.html):
        assert not re.search(r"\b\d{1,2}:\d{2}\b", text), text
        assert "daily" not in text
    if kind == "result":
        assert "24 พ.ย. 2569 เวลา 10.30 น." in notice.text  # the decision's time
        assert "ตารางเวลาสำรองข้อมูล: ทุกวัน เวลา 01.00 น." in notice.text
        # The e-mail shows checksums whole; nothing is cut with "…".
        assert context["restored"]["sha256"] in notice.text and context["restored"]["sha256"] in notice.html
        assert "…" not in notice.text
