"""The embedded stack itself: health, a REST-triggered run, SSH with strict host keys, the mail sink, stop.

It runs its own stack on a throwaway DAG folder (not the project's DAGs) so a broken project
DAG cannot hide a broken stack.
"""

from __future__ import annotations

import base64
import getpass
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from stack import Stack, free_ports, read_mail
from stack.embedded import throwaway_home
from stack.ports import port_in_use
from stack.procs import log_tail
from stack.rest_driver import wait_for_run

pytestmark = pytest.mark.stack

THAI_SUBJECT = "ทดสอบระบบสำรองข้อมูล SB-8-7 ครั้งที่ ๑"

SMOKE_DAGS = '''
from airflow.providers.ssh.operators.ssh import SSHOperator
from airflow.sdk import dag, task


@dag(dag_id="stack_smoke", schedule=None, catchup=False)
def stack_smoke():
    SSHOperator(task_id="restic_version", ssh_conn_id="sb87_backup_host", command="restic version",
                cmd_timeout=60)

    @task
    def send_mail():
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id="smtp_default") as hook:
            hook.send_email_smtp(to="director@doh.example.go.th", subject=__SUBJECT__,
                                 html_content="<p>ข้อความทดสอบ</p>")

    send_mail()


@dag(dag_id="stack_wrong_host_key", schedule=None, catchup=False)
def stack_wrong_host_key():
    SSHOperator(task_id="restic_version", ssh_conn_id="sb87_wrong_host_key", command="restic version",
                cmd_timeout=60, retries=0)


stack_smoke()
stack_wrong_host_key()
'''.replace("__SUBJECT__", repr(THAI_SUBJECT))


@pytest.fixture(scope="module")
def smoke_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("smoke")
    dags = root / "dags"
    dags.mkdir()
    (dags / "stack_smoke.py").write_text(SMOKE_DAGS, encoding="utf-8")
    ports = free_ports()
    # a key that is NOT the server's: strict checking must refuse the connection
    other = root / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    stack = Stack(throwaway_home("smoke"), ports=ports, dags_folder=dags)
    kind, b64 = other.with_suffix(".pub").read_text().split()[:2]
    stack.extra_env["AIRFLOW_CONN_SB87_WRONG_HOST_KEY"] = json.dumps({
        "conn_type": "ssh", "host": "127.0.0.1", "port": ports["ssh"], "login": getpass.getuser(),
        "extra": {"key_file": str(stack.ssh_client_key), "no_host_key_check": False,
                  "host_key": f"{kind} {b64}"},
    })
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.home, ignore_errors=True)


def _run(stack: Stack, dag_id: str, timeout: float = 120) -> tuple[str, str]:
    api = stack.client("admin")
    stack.wait_for_dag(dag_id, timeout=90)
    status, body = api.post(f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {}})
    assert status == 200, body
    run_id = body["dag_run_id"]
    return run_id, wait_for_run(api, run_id, timeout=timeout, dag_id=dag_id)


def _task_log(stack: Stack, dag_id: str, run_id: str, task_id: str) -> str:
    """What an operator would read for a failed smoke task: its log as the API serves it, then (the
    API may answer before the supervisor's last lines are written) the log files themselves, and the
    tails of the sshd and scheduler logs."""
    status, body = stack.client("admin").get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1")
    assert status == 200, body
    time.sleep(3)
    files = sorted((stack.airflow_home / "logs").glob(f"dag_id={dag_id}/**/task_id={task_id}/*.log"))
    on_disk = "\n".join(f"--- {f}\n{f.read_text(errors='replace')[-6000:]}" for f in files)
    tails = "\n".join(f"--- {name}.log\n{log_tail(stack.logs_dir / f'{name}.log', 25)}"
                      for name in ("sshd", "scheduler"))
    return f"{json.dumps(body, ensure_ascii=False)}\n{on_disk}\n{tails}"


def test_all_components_report_healthy(smoke_stack: Stack) -> None:
    health = smoke_stack.health()
    assert health is not None
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert smoke_stack.rss_bytes() > 0
    # every roster user can log in with the generated password; the pool exists
    assert smoke_stack.client("itc_director").get("dags")[0] == 200
    status, pool = smoke_stack.client("admin").get("pools/sb87_backup_host")
    assert status == 200 and pool["slots"] == 2


def test_rest_triggered_run_uses_ssh_with_strict_host_key_and_sends_thai_mail(smoke_stack: Stack) -> None:
    run_id, state = _run(smoke_stack, "stack_smoke")
    assert state == "success", _task_log(smoke_stack, "stack_smoke", run_id, "restic_version")

    status, xcom = smoke_stack.client("admin").get(
        f"dags/stack_smoke/dagRuns/{run_id}/taskInstances/restic_version/xcomEntries/return_value"
    )
    assert status == 200, xcom
    assert base64.b64decode(xcom["value"]).decode().startswith("restic ")

    [mail] = read_mail(smoke_stack.mail_dir)
    assert mail["Subject"] == THAI_SUBJECT
    assert mail["From"].addresses[0].display_name == "ศูนย์เทคโนโลยีสารสนเทศ"
    assert mail["From"].addresses[0].addr_spec == "itc@doh.example.go.th"
    assert mail["X-RcptTo"] == "director@doh.example.go.th"
    assert "ข้อความทดสอบ" in mail.get_body(("html",)).get_content()


def test_wrong_host_key_is_refused(smoke_stack: Stack) -> None:
    run_id, state = _run(smoke_stack, "stack_wrong_host_key")
    assert state == "failed"
    log = _task_log(smoke_stack, "stack_wrong_host_key", run_id, "restic_version")
    assert "BadHostKeyException" in log or "does not match" in log, log[-2000:]


def test_stop_leaves_nothing_behind(smoke_stack: Stack) -> None:
    pids = smoke_stack.pids()
    assert len(pids) > 6
    smoke_stack.stop()
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {proc.cmdline()}")
        except psutil.NoSuchProcess:
            continue
    assert not alive
    assert not [name for name, port in smoke_stack.ports.items() if port_in_use(port)]
    assert not (Path(smoke_stack.postgres.pgdata) / "postmaster.pid").exists()
