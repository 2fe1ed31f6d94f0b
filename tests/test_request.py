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


@pytest.mark.parametrize("outside", ["/etc", "/root/.ssh", "/srv/sb87-deposited-other/x", "/srv"])
def test_a_path_outside_the_servers_registered_data_roots_is_refused_at_intake(outside: str) -> None:
    """Issue 29 finding 6: a backup of /etc or /root/.ssh passed intake; the inventory's data_roots
    were never enforced. Refused now, naming the path's field, in Thai and English."""
    conf = sample_request()
    conf["servers"][0]["paths"] = ["/srv/sb87-deposited/ข้อมูล กองทะเบียน", outside]
    with pytest.raises(RequestInvalid) as refused:
        validate_request(conf, inventory=INVENTORY)
    assert set(refused.value.errors) == {"servers[0].paths[1]"}
    why = refused.value.errors["servers[0].paths[1]"]
    assert "นอกโฟลเดอร์ข้อมูลที่ลงทะเบียนไว้" in why and "outside the server's registered data folders" in why
    assert "/srv/sb87-deposited" in why, "the refusal says where the server's data may be"


@pytest.mark.parametrize("client_path", ["/var/lib/sb87-client", "/var/lib/sb87-client/dist-sakon1-fs01/password",
                                         "/var/lib", "/var"])
def test_the_backup_clients_folder_is_never_backed_up_even_inside_a_data_root(client_path: str) -> None:
    """The push key and the repository password live in SB87_CLIENT_DIR: neither it, anything in it, nor
    a folder that holds it is accepted, even when a server registers `/` or `/var` as a data root."""
    inventory = {host: {**entry, "data_roots": ["/"]} for host, entry in INVENTORY.items()}
    conf = sample_request()
    conf["servers"][0]["paths"] = [client_path]
    with pytest.raises(RequestInvalid) as refused:
        validate_request(conf, inventory=inventory)
    why = refused.value.errors["servers[0].paths[0]"]
    assert "โฟลเดอร์ของโปรแกรมสำรองข้อมูล" in why and "never backed up or delivered" in why


def test_a_restore_of_a_path_outside_the_data_roots_or_of_the_client_folder_is_refused() -> None:
    conf = {**sample_request(), "services": ["restore"],
            "restore": {"hostname": "fileserver01", "as_of": "2026-11-20T17:00:00+07:00",
                        "paths": ["/srv/sb87-deposited/ข้อมูล", "/root/.ssh", "/var/lib/sb87-client/x"]}}
    with pytest.raises(RequestInvalid) as refused:
        validate_request(conf, inventory=INVENTORY)
    assert set(refused.value.errors) == {"restore.paths[1]", "restore.paths[2]"}


def test_a_server_registered_without_data_roots_backs_up_nothing() -> None:
    inventory = {host: {k: v for k, v in entry.items() if k != "data_roots"} for host, entry in INVENTORY.items()}
    with pytest.raises(RequestInvalid) as refused:
        validate_request(sample_request(), inventory=inventory)
    assert set(refused.value.errors) == {"servers[0].paths[0]"}
