"""One-off check of the drill DAG on a throwaway embedded stack (not in `make test`: about 2.5 min with the
stack's start, over the suite's time budget).

Makes a policy for hr-db-01 with the pipeline's own scripts (through the stack's Airflow connections, host
keys pinned) and registers it, then triggers `sb87_recoverability_drill` for it twice: healthy (the run
succeeds, a `passed` row, no unit report), then for all servers (the unit that asked for it, Highway Office 1,
gets its monthly report), then with the server's sshd stopped (the run fails, a `not_run` row, one e-mail
to the IT Centre). A hostile `server` param is refused with HTTP 400.
Usage: `.venv/bin/python scripts/drill_dag_check.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from stack import Stack, free_ports, read_mail
from stack.embedded import throwaway_home

DAG = "dags/sb87_recoverability_drill"
HOST, SERVER_ID, CONN = "hr-db-01", "hw1-hrdb01", "sb87_srv_hr_db_01"
STARTED = time.monotonic()
ROOT = Path(__file__).resolve().parents[1]


def log(*what: object) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s]", *what, flush=True)


def check(ok: bool, what: object) -> None:
    if not ok:
        raise SystemExit(f"drill DAG check failed: {what}")


def _conn(env_name: str) -> SimpleNamespace:
    raw = json.loads(os.environ[env_name])
    return SimpleNamespace(conn_type=raw["conn_type"], host=raw.get("host"), port=raw.get("port"),
                           login=raw.get("login"), password=raw.get("password"), schema=raw.get("schema"),
                           extra_dejson=raw.get("extra") or {})


UNIT = {"agency": "สำนักงานทางหลวงที่ 1", "email": "hw1@doh.example.go.th", "name": "ผู้อำนวยการสำนักงานทางหลวงที่ 1"}


def _config_with_reports() -> str:
    """The organisation file with Highway Office 1 asking for the monthly drill report."""
    raw = json.loads((ROOT / "config" / "sb87.json").read_text(encoding="utf-8"))
    raw["drill_reports"] = [UNIT]
    path = Path(tempfile.mkdtemp(prefix="sb87-drill-dag-")) / "sb87.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _report_task(run: tuple[str, list]) -> str | None:
    return next((state for task_id, _, state in run[1] if task_id == "report_to_units"), None)


def main() -> None:
    stack = Stack(throwaway_home("drill-dag"), ports=free_ports(),
                  extra_env={"SB87_SSH_RETRY_DELAY_SECONDS": "3", "SB87_CONFIG": _config_with_reports()})
    stack.start()
    try:
        os.environ.update(stack.own_env())
        stack.wait_for_dag("sb87_recoverability_drill", timeout=240)
        log("stack up, DAG parsed")
        from sb87.backup.backends import parse_results, render_script
        from sb87.backup.datapath import backup_endpoint, install_client_password
        from sb87.backup.drill import drill_rows, incident_rows
        from sb87.backup.freshness import record_policy
        from sb87.backup.operator import run_script
        from sb87.records import store

        endpoint = backup_endpoint(_conn("AIRFLOW_CONN_SB87_BACKUP_HOST"))
        server = stack.deposited_server(HOST)
        server.put_file("/srv/sb87-deposited/drill/ข้อมูล 1.csv", "ก,ข\n1,2\n".encode())
        server.put_file("/srv/sb87-deposited/drill/b.bin", os.urandom(300_000))
        request = {"memo_no": "ทล 0601/9001", "agency": "สำนักงานทางหลวงที่ 1",
                   "servers": [{"hostname": HOST, "address": "127.0.0.3", "os": "Debian GNU/Linux 12",
                                "paths": ["/srv/sb87-deposited/drill"], "size_gb": 0.01}],
                   "retention": {"daily": 7, "weekly": 4, "monthly": 6}, "schedule": "daily 01:00"}
        [made] = parse_results(run_script("sb87_backup_host", render_script("create_policy", request, "x"), 300))
        install_client_password("sb87_backup_host", CONN, made["client_password_file"],
                                f"/var/lib/sb87-client/{SERVER_ID}/password")
        [client] = parse_results(run_script(CONN, render_script("client_policy", request, "x", server=SERVER_ID,
                                                                **endpoint), 300))
        run_script("sb87_backup_host", render_script("authorize_push", request, "x",
                                                     push_public_key=client["push_public_key"]), 300)
        run_script(CONN, render_script("test_backup", request, "x", server=SERVER_ID, **endpoint), 300)
        eng = store.engine(store.url_of(_conn("AIRFLOW_CONN_SB87_DB")))
        record_policy(eng, server_id=SERVER_ID, hostname=HOST, agency=request["agency"], ssh_conn_id=CONN,
                      schedule="daily 01:00", run_id="manual__drillcheck", now=datetime.now(UTC))
        log("policy made, one backup")
        api = stack.client("admin")

        def trigger_and_wait(conf: dict) -> tuple[str, list]:
            status, run = api.post(f"{DAG}/dagRuns", {"logical_date": None, "conf": conf})
            check(status == 200, (status, run))
            path = f"{DAG}/dagRuns/{quote(run['dag_run_id'], safe='')}"
            while (state := api.get(path)[1]["state"]) not in ("success", "failed"):
                time.sleep(1)
            tis = api.get(f"{path}/taskInstances")[1]["task_instances"]
            return state, sorted((t["task_id"], t.get("rendered_map_index"), t["state"]) for t in tis)

        healthy = trigger_and_wait({"server": HOST})
        log("healthy run:", healthy)
        check(healthy[0] == "success" and ("drill", HOST, "success") in healthy[1], healthy)
        check(_report_task(healthy) == "success", "report task ran (sending nothing)")
        [row] = drill_rows(eng)
        log({k: row[k] for k in ("state", "files", "bytes", "verified", "check_subset", "check_ok",
                                 "throughput_bytes_per_second", "estimated_full_restore_seconds")})
        check(row["state"] == "passed" and row["verified"] == row["files"] == 2, row)
        status, body = api.post(f"{DAG}/dagRuns", {"logical_date": None, "conf": {"server": "x; rm -rf /"}})
        log("hostile param:", status, str(body)[:120])
        check(status == 400, "status == 400")
        every = trigger_and_wait({})
        log("run for all servers:", every)
        check(every[0] == "success" and _report_task(every) == "success", every)
        reports = [m for m in read_mail(stack.mail_dir) if "รายงานผลการทดสอบกู้คืน" in str(m["Subject"])]
        log("reports:", [(str(m["Subject"]), str(m["To"])) for m in reports])
        check(len(reports) == 1 and UNIT["email"] in str(reports[0]["To"]), "one report, to Highway Office 1")
        text = reports[0].get_body(("plain",)).get_content()
        check(f"เครื่อง {HOST} ได้สำรองข้อมูลไว้แล้ว" in text and "ยืนยันได้ว่ากู้คืนได้จริง" in text, text)
        server.stop()
        down = trigger_and_wait({"server": SERVER_ID})
        log("sshd stopped:", down)
        check(down[0] == "failed" and ("drill", HOST, "failed") in down[1], down)
        check(_report_task(down) == "failed", "the report task fails the run")
        row = drill_rows(eng)[-1]
        log(row["state"], row["detail"])
        check(row["state"] == "not_run", "row['state'] == 'not_run'")
        [incident] = incident_rows(eng)
        check(incident["recovered_at"] is None, "incident['recovered_at'] is None")
        deadline = time.monotonic() + 60
        while not (mails := [m for m in read_mail(stack.mail_dir) if "ทดสอบกู้คืน" in str(m["Subject"])
                             and "รายงานผล" not in str(m["Subject"])]):
            check(time.monotonic() < deadline, "no drill e-mail")
            time.sleep(2)
        log("e-mails:", [str(m["Subject"]) for m in mails])
        check(len(mails) == 1, "len(mails) == 1")
    finally:
        stack.stop()
        stack.discard()
        shutil.rmtree(stack.home, ignore_errors=True)
        log("stack stopped")


if __name__ == "__main__":
    main()
