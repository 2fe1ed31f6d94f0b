"""`make demo`: start the embedded stack, file the sample request, and wait for the director.

It leaves the run waiting at step 2 and tells you how to approve it (the UI, or one curl line).
Each later decision (step 3: staff record the server-details document, the group director
endorses it; step 4: the group director orders staff to proceed) is announced as it opens, with
who answers it and where. Then the backup runs over SSH and the result memo lands in the mail
folder. Ctrl-C (or SIGTERM) stops everything it started. `--approve` answers every decision
itself, as the roster would, for a quick look.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sb87 import steps
from sb87.settings import PROJECT_ROOT as REPO_ROOT
from stack import Stack, default_home, read_mail
from stack.rest_driver import (
    DAG_ID,
    carry_through,
    run_state,
    trigger,
    wait_for_decision,
    waiting_decisions,
)

DIRECTOR = "itc_director"
STAFF = "staff_somchai"


def sample_conf(stack: Stack) -> dict:
    """The sample request, its files put on the deposited server's own disk (Thai names with a space).

    Its schedule is the next minute but one, in the server's clock, so the demo also shows the
    server's cron pushing a scheduled snapshot with nobody touching anything.
    """
    conf = json.loads((REPO_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8"))
    server = stack.deposited_server(conf["servers"][0]["hostname"])
    folder = conf["servers"][0]["paths"][0]
    server.put_file(f"{folder}/สัญญา/สัญญาจ้าง 2569.txt", "สัญญาเลขที่ 12/2569\n".encode())
    server.put_file(f"{folder}/รายงานประจำปี.txt", "รายงานประจำปีงบประมาณ 2569\n".encode() * 100)
    soon = datetime.now().astimezone() + timedelta(minutes=2)
    conf["schedule"] = f"daily {soon:%H:%M}"
    return conf


def scheduled_snapshot(stack: Stack, conf: dict, timeout: float = 200) -> dict | None:
    """Wait for the first snapshot the server's cron pushed (tag `sb87-scheduled`); None on timeout."""
    from sb87.backup.datapath import SCHEDULED_TAG
    from sb87.settings import registered_servers

    server_id = registered_servers()[conf["servers"][0]["hostname"]]["id"]
    env = {**stack.env, "RESTIC_REPOSITORY": str(Path(stack.env["SB87_REPO_ROOT"]) / server_id),
           "RESTIC_PASSWORD_FILE": str(stack.restic_password_file)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["restic", "snapshots", "--json", "--tag", SCHEDULED_TAG], env=env,
                               capture_output=True, text=True, check=False)
        if found.returncode == 0 and (snapshots := json.loads(found.stdout or "[]")):
            return snapshots[-1]
        time.sleep(5)
    return None


def how_to_approve(stack: Stack, run_id: str) -> str:
    pw = f"$(python3 -c 'import json;print(json.load(open({str(stack.passwords_file)!r}))[\"{DIRECTOR}\"])')"
    token = (
        f"TOKEN=$(curl -s -X POST {stack.api_url}/auth/token -H 'Content-Type: application/json' "
        f"-d \"{{\\\"username\\\":\\\"{DIRECTOR}\\\",\\\"password\\\":\\\"{pw}\\\"}}\" "
        "| python3 -c 'import json,sys;print(json.load(sys.stdin)[\"access_token\"])')"
    )
    run = run_id.replace("+", "%2B").replace(":", "%3A")
    patch = (
        f"curl -s -X PATCH -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' "
        f"{stack.api_url}/api/v2/dags/{DAG_ID}/dagRuns/{run}/taskInstances/{steps.DIRECTOR_DECISION}/-1/hitlDetails "
        f"-d {shlex.quote(json.dumps({'chosen_options': [steps.APPROVE], 'params_input': {}}, ensure_ascii=False))}"
    )
    return f"""
  SB-8-7 demo is running.
  UI:        {stack.api_url}   (log in as {DIRECTOR}; passwords: {stack.passwords_file})
  Waiting:   run {run_id} at "{steps.DIRECTOR.title}"
  Approve in the UI: Browse → Required Actions → the request → อนุมัติ
             {required_action_url(stack, run_id, steps.DIRECTOR_DECISION)}
  or with curl:
    {token}
    {patch}
  Mail:      {stack.mail_dir}/new  (a Maildir: each message one file)
  Stop:      Ctrl-C stops every process the demo started.
"""


def required_action_url(stack: Stack, run_id: str, task_id: str) -> str:
    run = run_id.replace("+", "%2B").replace(":", "%3A")
    return f"{stack.api_url}/dags/{DAG_ID}/runs/{run}/tasks/{task_id}/required_actions"


def announce_new_decisions(stack: Stack, run_id: str, announced: set[str]) -> None:
    """Print each decision of the run that has opened since the last call: what, who, where."""
    for detail in waiting_decisions(stack.client(DIRECTOR)):
        task_id = detail["task_instance"]["task_id"]
        if detail["task_instance"]["dag_run_id"] != run_id or task_id in announced:
            continue
        announced.add(task_id)
        who = ", ".join(user["id"] for user in detail.get("assigned_users") or []) or "anyone"
        print(f"  waiting: {detail['subject']}\n    answer as: {who}\n"
              f"    at:        {required_action_url(stack, run_id, task_id)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approve", action="store_true", help="answer every decision automatically (steps 2-4)")
    parser.add_argument("--exit", action="store_true", help="stop once the run has finished")
    args = parser.parse_args()

    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    started = time.monotonic()
    with Stack(default_home()) as stack:
        stack.wait_for_dag(DAG_ID, timeout=120)
        print(f"stack healthy in {time.monotonic() - started:.0f} s", flush=True)
        status, body = trigger(stack.client(STAFF), conf := sample_conf(stack))
        if status != 200:
            print(f"trigger refused: HTTP {status} {body}", file=sys.stderr)
            return 1
        run_id = body["dag_run_id"]
        wait_for_decision(stack.client(STAFF), run_id)
        print(how_to_approve(stack, run_id), flush=True)
        if args.approve:
            carry_through(stack.client, run_id, staff=STAFF, director=DIRECTOR)
        last = None
        announced = {steps.DIRECTOR_DECISION}
        while not stopping:
            announce_new_decisions(stack, run_id, announced)
            state = run_state(stack.client(STAFF), run_id)
            if state != last:
                print(f"run {run_id}: {state}", flush=True)
                last = state
                if state in ("success", "failed"):
                    for mail in read_mail(stack.mail_dir):
                        print(f"  mail: {mail['Subject']}  →  {mail['To']}", flush=True)
                    if not args.exit:
                        print("  the run is over; the UI stays up until Ctrl-C", flush=True)
            if args.exit and state in ("success", "failed"):
                if state == "success":
                    print(f"  waiting for the server's cron ({conf['schedule']}, server clock) ...", flush=True)
                    snap = scheduled_snapshot(stack, conf)
                    print(f"  scheduled snapshot: {snap['short_id']} at {snap['time']}" if snap
                          else "  no scheduled snapshot arrived", flush=True)
                break
            time.sleep(2)
    print("stopped.")
    return 1 if last == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
