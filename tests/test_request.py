"""Step 1's checks against the inventory: what intake can already know is refused there, naming the field."""

from __future__ import annotations

import json

import pytest

from sb87.intake_rules.params import sample_request
from sb87.intake_rules.request import RequestInvalid, validate_request
from sb87.settings import PROJECT_ROOT

INVENTORY = {s["hostname"]: s for s in json.loads((PROJECT_ROOT / "config" / "inventory.json").read_text())["servers"]}


def test_the_sample_request_passes_against_the_inventory() -> None:
    request = validate_request(sample_request(), inventory=INVENTORY)
    assert request["servers"][0]["hostname"] == "fileserver01"


def test_a_server_the_inventory_gives_to_another_unit_is_refused_at_intake() -> None:
    """Once accepted, such a request failed only at step 6, after every human step."""
    conf = {**sample_request(), "agency": "สำนักแผนงาน"}
    with pytest.raises(RequestInvalid) as refused:
        validate_request(conf, inventory=INVENTORY)
    assert "registered to another unit" in refused.value.errors["servers[0].hostname"]
    assert INVENTORY["fileserver01"]["agency"] in refused.value.errors["servers[0].hostname"]


def test_a_restore_from_another_units_server_is_refused_at_intake() -> None:
    conf = {**sample_request(), "services": ["restore"],
            "restore": {"hostname": "hr-db-01", "paths": ["/srv/sb87-deposited/ข้อมูล"],
                        "as_of": "2026-11-20T17:00:00+07:00"}}
    with pytest.raises(RequestInvalid) as refused:
        validate_request(conf, inventory=INVENTORY)
    assert set(refused.value.errors) == {"restore.hostname"}


def test_a_delivery_other_than_server_or_archive_is_refused() -> None:
    conf = {**sample_request(), "services": ["restore"], "agency": INVENTORY["hr-db-01"]["agency"],
            "restore": {"hostname": "hr-db-01", "paths": ["/srv/sb87-deposited/ข้อมูล"],
                        "as_of": "2026-11-20T17:00:00+07:00", "delivery": "usb-stick"}}
    with pytest.raises(RequestInvalid) as refused:
        validate_request(conf, inventory=INVENTORY)
    assert set(refused.value.errors) == {"restore.delivery"}
