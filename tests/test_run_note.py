"""The run note is built from step blocks; a re-reported status replaces only its own block."""

from sb87.airflow_api import drop_note_block
from sb87.records.run_note import WAITING_FOR_EQUIPMENT

NOTE = "\n".join([
    "คำขอ ทล 0601/1234 สำนักแผนงาน",
    "ขั้นตอนที่ 3 เอกสารระบุรายละเอียด เห็นชอบโดย ผอ.กลุ่ม: /docs/run/server-details.pdf",
    "ขั้นตอนที่ 4 สั่งการให้ สมชาย ใจดี ดำเนินการ",
    f"{WAITING_FOR_EQUIPMENT}:",
    "- พื้นที่ว่างไม่พอ",
    "- ติดต่อ fin-app-01 ไม่ได้",
])


def test_a_status_block_is_replaced_and_earlier_steps_are_kept() -> None:
    kept = drop_note_block(NOTE, WAITING_FOR_EQUIPMENT)
    assert kept.splitlines() == NOTE.splitlines()[:3]


def test_a_block_in_the_middle_ends_at_the_next_step() -> None:
    note = NOTE + "\nขั้นตอนที่ 6 จัดทำ Restore File แล้ว"
    assert drop_note_block(note, "ขั้นตอนที่ 4").splitlines() == [
        *NOTE.splitlines()[:2], *NOTE.splitlines()[3:], "ขั้นตอนที่ 6 จัดทำ Restore File แล้ว"
    ]


def test_nothing_is_dropped_when_the_block_is_absent() -> None:
    assert drop_note_block(NOTE, "ขั้นตอนที่ 6") == NOTE
