"""The podman trial's driver: the sample request through the compose stack's REST API to its result e-mail.

Run by scripts/podman_trial.sh once the stack is up (docker-compose.hostnet.yaml: the api-server on
127.0.0.1:18080). Acts as the roster's people with the first passwords airflow-init wrote, answers
every decision as `stack.rest_driver.carry_through` does, and prints the figures the trial reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

from stack.client import ApiClient
from stack.rest_driver import DAG_ID, answer, human_steps, task_states, trigger, wait_for_decision, wait_for_run
from stack.smtp_sink import read_mail

STAFF = "staff_somchai"
#: the result e-mail's subject starts so (include/templates/email/result.subject.j2)
RESULT_SUBJECT = "[SB-8-7] แจ้งผลการดำเนินงาน"
REPO_ROOT = Path(__file__).resolve().parents[1]


def wait_for_dag(client: ApiClient, timeout: float) -> float:
    """Seconds until the request DAG is parsed and unpaused, as seen through the API."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            status, body = client.get(f"dags/{DAG_ID}")
        except (httpx.HTTPError, PermissionError):
            status, body = 0, None
        if status == 200 and not body.get("is_paused"):
            return time.monotonic() - started
        time.sleep(3)
    raise TimeoutError(f"{DAG_ID} not available through {client.base_url} after {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:18080")
    parser.add_argument("--passwords", type=Path, required=True, help="airflow-init's initial-passwords.json")
    parser.add_argument("--mail-dir", type=Path, required=True, help="the mail catcher's Maildir")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--run-id", help="carry on with this run instead of triggering a new one")
    args = parser.parse_args(argv)

    passwords = json.loads(args.passwords.read_text(encoding="utf-8"))
    clients: dict[str, ApiClient] = {}

    def client(user: str) -> ApiClient:
        if user not in clients:
            clients[user] = ApiClient(args.api, user, passwords[user], timeout=120)
        return clients[user]

    figures: dict[str, float | str | bool] = {"dag_ready_s": round(wait_for_dag(client(STAFF), args.timeout), 1)}
    started = time.monotonic()
    if args.run_id:
        run_id = args.run_id
    else:
        conf = json.loads((REPO_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8"))
        status, body = trigger(client(STAFF), conf)
        if status != 200:
            print(f"trigger refused: HTTP {status} {body}", file=sys.stderr)
            return 1
        run_id = body["dag_run_id"]
        wait_for_decision(client(STAFF), run_id, timeout=args.timeout)
        figures["first_decision_s"] = round(time.monotonic() - started, 1)
        print(f"run {run_id}: first decision open after {figures['first_decision_s']} s", flush=True)
    # Every human step as stack.rest_driver.carry_through takes them, skipping those already answered
    # (a resumed run), each with the trial's own patience: a step's SSH work comes before its decision.
    for user, task_id, option, params in human_steps(staff=STAFF):
        if task_states(client(STAFF), run_id).get(task_id) == "success":
            continue
        answer(client(user), run_id, task_id, option, params, timeout=args.timeout)
        print(f"  answered {task_id} as {user} at {time.monotonic() - started:.1f} s", flush=True)
    state = wait_for_run(client(STAFF), run_id, timeout=args.timeout)
    figures["run_s"] = round(time.monotonic() - started, 1)
    figures["state"] = state
    mails = read_mail(args.mail_dir)
    figures["mails"] = len(mails)
    figures["result_mail"] = any(str(m["Subject"]).startswith(RESULT_SUBJECT) for m in mails)
    for mail in mails:
        print(f"  mail: {mail['Subject']}  ->  {mail['To']}", flush=True)
    if state != "success":
        failed = {t: s for t, s in task_states(client(STAFF), run_id).items() if s not in ("success", "skipped")}
        print(f"run {run_id} ended {state}: {failed}", file=sys.stderr)
    print("figures: " + json.dumps(figures, ensure_ascii=False), flush=True)
    return 0 if state == "success" and figures["result_mail"] else 1


if __name__ == "__main__":
    sys.exit(main())
