"""Backup and restore throughput on a sample (1 GiB by default), and step 6's overhead in Airflow.

1. The pipeline backs up the sample (a backup request, approved through the REST API): backup
   throughput = bytes / duration of `backup_test.test_backup`.
2. The pipeline produces a Restore File of all of it (a restore request): step 6 = from the start
   of `restore_file.list_snapshots` to the end of `restore_file.verify_delivery`.
3. The same three scripts (list snapshots, restore and package, verify) run by hand with the
   OpenSSH client against the same host, timed: restore throughput = bytes / that time.
Prints the figures and the ratio pipeline / by hand for step 6.
Usage: `python bench/restore_throughput.py [--mib 1024]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "plugins")]

from sb87.backends import parse_results  # noqa: E402
from stack import Stack, free_ports  # noqa: E402
from stack.service import carry_through, task_instance, trigger, wait_for_decision, wait_for_run  # noqa: E402


def _approved(stack: Stack, conf: dict) -> str:
    status, body = trigger(stack.client("staff_somchai"), conf)
    assert status == 200, body
    run_id = body["dag_run_id"]
    wait_for_decision(stack.client("staff_somchai"), run_id)
    carry_through(stack.client, run_id)
    state = wait_for_run(stack.client("staff_somchai"), run_id, timeout=3600)
    assert state == "success", f"run {run_id} {state}"
    return run_id


def _seconds(ti: dict, end: dict | None = None) -> float:
    start = datetime.fromisoformat(ti["start_date"])
    return (datetime.fromisoformat((end or ti)["end_date"]) - start).total_seconds()


def _ssh(stack: Stack, known_hosts: Path, command: str) -> tuple[float, str]:
    conn = json.loads(stack.env["AIRFLOW_CONN_SB87_BACKUP_HOST"])
    started = time.perf_counter()
    done = subprocess.run(
        ["ssh", "-i", conn["extra"]["key_file"], "-p", str(conn["port"]), "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{conn['login']}@{conn['host']}", command],
        capture_output=True, text=True, check=True,
    )
    return time.perf_counter() - started, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 backup/restore throughput")
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    sample = json.loads((REPO_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="sb87-throughput-") as tmp:
        data = Path(tmp) / "ข้อมูล ทดสอบ"
        data.mkdir()
        for i in range(max(1, args.mib // 128)):
            with (data / f"ไฟล์ {i:02d}.bin").open("wb") as fh:
                for _ in range(min(args.mib, 128) // 8):
                    fh.write(os.urandom(8 * 2**20))
        size = sum(p.stat().st_size for p in data.iterdir())
        with Stack(Path(tmp) / "stack", ports=free_ports()) as stack:
            stack.wait_for_dag("sb87_server_backup_service", timeout=120)
            admin = stack.client()
            conf = {**sample, "memo_no": "ทล 0601/8001"}
            conf["servers"] = [{**sample["servers"][0], "paths": [str(data)], "size_gb": 2}]
            backup_run = _approved(stack, conf)
            backup_s = _seconds(task_instance(admin, backup_run, "backup_test.test_backup"))

            as_of = datetime.now(UTC).isoformat()
            restore = {**sample, "memo_no": "ทล 0601/8002", "services": ["restore"],
                       "restore": {"hostname": "fileserver01", "paths": [str(data)], "as_of": as_of}}
            restore_run = _approved(stack, restore)
            step6_s = _seconds(task_instance(admin, restore_run, "restore_file.list_snapshots"),
                               task_instance(admin, restore_run, "restore_file.verify_delivery"))

            # The same scripts, by hand over OpenSSH with the pinned host key.
            from sb87.backends import render_script
            from sb87.request import validate_request

            conn = json.loads(stack.env["AIRFLOW_CONN_SB87_BACKUP_HOST"])
            known_hosts = Path(tmp) / "known_hosts"
            known_hosts.write_text(f"[{conn['host']}]:{conn['port']} {conn['extra']['host_key']}\n")
            os.environ.update({k: v for k, v in stack.env.items() if k.startswith("SB87_")})
            request = validate_request({**restore, "memo_no": "ทล 0601/8003"})
            list_s, out = _ssh(stack, known_hosts, render_script("list_snapshots", request, "by-hand"))
            snapshot = parse_results(out.encode())[0]["snapshots"][-1]["id"]
            restore_s, out = _ssh(stack, known_hosts,
                                  render_script("restore_file", request, "by-hand", snapshot=snapshot))
            package = parse_results(out.encode())[0]
            verify_s, _ = _ssh(stack, known_hosts, render_script("verify_delivery", request, "by-hand",
                                                                 archive=package["archive"], sha256=package["sha256"]))
            by_hand = list_s + restore_s + verify_s

    mib = size / 2**20
    print(f"sample: {mib:.0f} MiB in {max(1, args.mib // 128)} files (random, incompressible)")
    print(f"backup (pipeline, test_backup): {backup_s:.1f} s = {mib / backup_s:.0f} MiB/s")
    print(f"restore file by hand over SSH (restore + tar.gz + manifest + verify): {by_hand:.1f} s = "
          f"{mib / by_hand:.0f} MiB/s")
    print(f"step 6 in the pipeline: {step6_s:.1f} s; by hand: {by_hand:.1f} s; ratio {step6_s / by_hand:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
