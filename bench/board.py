"""Board benchmark (issue 23): the operations board's data endpoint against Airflow's own run list.

On a throwaway embedded stack (LocalExecutor, private PostgreSQL, the real scheduler and api-server):

1. N sample requests are triggered through REST as staff (distinct `memo_no`); the benchmark waits,
   bounded, until each one's `director_decision` is `awaiting_input`: N open requests, each a running
   run with its task instances and a waiting decision, as the board reads them.
2. The inventory becomes S servers (the stack's real ones, then synthetic ones) and the project
   database gets each a freshness policy, a week of daily checks and, for every tenth, an open
   incident: what the freshness watch would have written.
3. Measured in the same run, alternating, `--rounds` times each, as the IT Centre Director:
   `GET /sb87-board/api/board` (the board's data) and Airflow's own
   `GET /api/v2/dags/~/dagRuns?state=running&limit=100` (baseline). Four warm-up calls each first (each
   api-server worker builds the board's app on its first request).
4. The same again, but with one task instance changed in Airflow's database before each look: the board
   finds that run's fingerprint changed and reads the run again (`sb87.board.data.ChangedRuns`).

The board's data is its first page, as a person opening the board gets it: the worst 100 open requests
(`sb87.board.data.PAGE_SIZE`, as many as a page of Airflow's run list), the counts of all of them, every server.

Target (issue 23): board p95 ≤ 300 ms with 500 open requests and 200 servers, and ≤ 1.5× the
baseline's p95. JSON (`--json`): `requests`, `servers`, `open_on_board` (all open), `open_on_page` (the rows
sent), `servers_on_board`, `board_s`
and `airflow_s` (spreads of seconds: n, median, p95, min, max), `ratio_p95`, `board_bytes`,
`board_server_timing_s` (the board's `Server-Timing` header: reading Airflow, the project database, the
rows; spreads), then `changed`: `board_s`, `airflow_s`, `ratio_p95` and `board_server_timing_s` again with a
task instance changed in Airflow's database before every look (`touch_a_task`), so that the board reads its
run again instead of finding every run unchanged (`sb87.board.data.ChangedRuns`); `ok`, `target_met`.

`python -m bench.board -n 500 --servers 200 --json bench/results/board.json`; a quick proof:
`python -m bench.board -n 5 --servers 20 --rounds 20`.
"""

from __future__ import annotations

import argparse
import copy
import json
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import BenchTimeout, bound, spread, throwaway_stack, write_json
from sb87 import steps
from sb87.backup import freshness
from sb87.records import store
from sb87.settings import PROJECT_ROOT
from stack import Stack, rest_driver

SAMPLE_FILE = PROJECT_ROOT / "config" / "sample_request.json"
INVENTORY_FILE = PROJECT_ROOT / "config" / "inventory.json"
BOARD = "/sb87-board/api/board"
BASELINE = "/api/v2/dags/~/dagRuns"


def file_requests(stack: Stack, n: int, wait_s: float) -> int:
    """Trigger N requests; return how many reached the director's decision within `wait_s`."""
    stack.wait_for_dag(steps.DAG_ID, timeout=180)
    sample = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    staff, admin = stack.client("staff_somchai"), stack.client("admin")
    for i in range(n):
        conf = copy.deepcopy(sample)
        conf["memo_no"] = f"ทล 0699/{10000 + i}"
        status, body = rest_driver.trigger(staff, conf)
        if status != 200:
            raise RuntimeError(f"trigger {i} refused: HTTP {status} {body}")
    deadline = time.monotonic() + wait_s
    waiting = 0
    while time.monotonic() < deadline:
        status, body = admin.get(f"dags/{steps.DAG_ID}/dagRuns/~/taskInstances", task_id=steps.DIRECTOR_DECISION,
                                 state="awaiting_input", limit=1)
        waiting = body.get("total_entries", 0) if status == 200 else 0
        if waiting >= n:
            break
        time.sleep(2)
    return waiting


def seed_servers(stack: Stack, inventory_path: Path, count: int) -> None:
    """S servers in the inventory the api-server reads, each with a policy and a week of checks."""
    real = json.loads(INVENTORY_FILE.read_text(encoding="utf-8"))
    servers = list(real["servers"])
    for i in range(len(servers), count):
        servers.append({"id": f"bench-srv-{i:03d}", "hostname": f"bench-srv-{i:03d}", "address": "127.0.0.1",
                        "agency": f"สำนักงานทางหลวงที่ {i % 18 + 1}", "ssh_conn_id": "sb87_bench_none",
                        "os": "Debian GNU/Linux 12", "data_roots": ["/srv/data"], "restore_root": "/srv/restore"})
    inventory_path.write_text(json.dumps({**real, "servers": servers[:count]}, ensure_ascii=False), encoding="utf-8")
    eng = store.engine(store.url_of(_project_conn(stack)))
    now = datetime.now(UTC)
    with eng.begin() as db:
        for i, s in enumerate(servers[:count]):
            db.execute(freshness.policies.insert().values(
                server_id=s["id"], hostname=s["hostname"], agency=s["agency"], ssh_conn_id=s["ssh_conn_id"],
                schedule="daily 01:00", run_id="bench", created_at=now - timedelta(days=30), active=True))
            for day in range(7):
                db.execute(freshness.checks.insert().values(
                    checked_at=now - timedelta(days=day), server_id=s["id"], state="ok" if i % 10 else "overdue",
                    last_snapshot_at=now - timedelta(days=day, hours=13), last_exit=0, detail=""))
            if i % 10 == 0:
                db.execute(freshness.incidents.insert().values(
                    incident_key=f"freshness:{s['id']}:bench", server_id=s["id"], state="overdue", opened_at=now))


def _project_conn(stack: Stack) -> Any:
    from types import SimpleNamespace

    raw = json.loads(stack.env["AIRFLOW_CONN_SB87_DB"])
    return SimpleNamespace(conn_type=raw["conn_type"], host=raw["host"], port=raw.get("port"),
                           login=raw.get("login"), password=raw.get("password"), schema=raw.get("schema"))


SERVER_TIMING: list[str] = []


def timed(client: Any, path: str, **params: Any) -> tuple[float, int, Any]:
    t0 = time.perf_counter()
    response = client._http.get(client._url(path), params=params or None,
                                headers={"Authorization": f"Bearer {client.token}"})
    elapsed = time.perf_counter() - t0
    if "server-timing" in response.headers:
        SERVER_TIMING.append(response.headers["server-timing"])
    return elapsed, response.status_code, response.json()


def server_timing() -> dict[str, Any]:
    """The board's own account of its time (`Server-Timing`: airflow, project, rows), each a spread (s)."""
    parts: dict[str, list[float]] = {}
    for header in SERVER_TIMING:
        for item in header.split(","):
            name, _, dur = item.strip().partition(";dur=")
            parts.setdefault(name, []).append(float(dur) / 1000)
    return {name: spread(values) for name, values in parts.items()}


def measure_board(stack: Stack, inventory_path: Path, servers: int, rounds: int) -> dict[str, Any]:
    """With the requests already open on `stack`: S servers seeded (`seed_servers`), then the board's data
    and Airflow's run list called in turns, `rounds` times each, as the IT Centre Director. Also run by
    bench/waiting.py with its 500 open requests (issue 23's size)."""
    seed_servers(stack, inventory_path, servers)
    director = stack.client("itc_director")
    _, status, body = timed(director, BOARD)
    if status != 200:
        raise RuntimeError(f"board: HTTP {status} {body}")
    figures: dict[str, Any] = {"servers": servers, "rounds": rounds, "open_on_board": body["open_total"],
                               "open_on_page": len(body["open"]),
                               "servers_on_board": len(body["servers"]),
                               "board_bytes": len(json.dumps(body, ensure_ascii=False).encode())}
    # Warm-up: the api-server's workers each build the board's app on their first request.
    for _ in range(4):
        timed(director, BOARD)
        timed(director, BASELINE, state="running", limit=100)
    figures.update(in_turns(director, rounds))
    # The same with one run changed before every look, so that the board reads that run again.
    figures["changed"] = in_turns(director, rounds, before_each=lambda: touch_a_task(stack))
    return figures


def in_turns(director: Any, rounds: int, before_each: Callable[[], None] | None = None) -> dict[str, Any]:
    """The board's data and Airflow's run list called in turns, `rounds` times each (`before_each` first, if
    given): their spreads, the ratio of their p95s and the board's own `Server-Timing`."""
    SERVER_TIMING.clear()
    board, airflow = [], []
    for _ in range(rounds):
        if before_each is not None:
            before_each()
        elapsed, status, body = timed(director, BOARD)
        assert status == 200, body
        board.append(elapsed)
        elapsed, status, body = timed(director, BASELINE, state="running", limit=100)
        assert status == 200, body
        airflow.append(elapsed)
    board_s, airflow_s = spread(board), spread(airflow)
    return {"board_s": board_s, "airflow_s": airflow_s, "ratio_p95": round(board_s["p95"] / airflow_s["p95"], 2),
            "board_server_timing_s": server_timing()}


def touch_a_task(stack: Stack) -> None:
    """A change the board must see: one task instance of the request DAG gets a new start time (a microsecond
    later), in Airflow's database, as a task starting or ending changes it."""
    from sqlalchemy import create_engine, text

    eng = create_engine(stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with eng.begin() as db:
            db.execute(text("UPDATE task_instance SET start_date = start_date + interval '1 microsecond' "
                            "WHERE id = (SELECT id FROM task_instance WHERE dag_id = :dag AND start_date IS NOT NULL "
                            "LIMIT 1)"), {"dag": steps.DAG_ID})
    finally:
        eng.dispose()


def measure(stack: Stack, args: argparse.Namespace, inventory_path: Path, figures: dict[str, Any]) -> None:
    figures["waiting"] = file_requests(stack, args.n, args.wait_timeout)
    figures.update(measure_board(stack, inventory_path, args.servers, args.rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 board benchmark (see the module doc)")
    parser.add_argument("-n", type=int, default=500, help="open requests")
    parser.add_argument("--servers", type=int, default=200, help="servers in the inventory")
    parser.add_argument("--rounds", type=int, default=100, help="calls of each endpoint")
    parser.add_argument("--wait-timeout", type=float, default=2400, help="seconds for the requests to open")
    parser.add_argument("--json", type=Path, help="write the figures here (read by bench/report/)")
    parser.add_argument("--timeout", type=float, default=3300, help="bound of the whole benchmark, seconds")
    args = parser.parse_args()

    figures: dict[str, Any] = {"benchmark": "board", "requests": args.n, "servers": args.servers,
                               "rounds": args.rounds}
    bound(args.timeout)
    error = None
    try:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="sb87-bench-board-") as tmp:
            inventory_path = Path(tmp) / "inventory.json"
            inventory_path.write_text(INVENTORY_FILE.read_text(encoding="utf-8"), encoding="utf-8")
            with throwaway_stack("board", extra_env={"SB87_INVENTORY_FILE": str(inventory_path)}) as stack:
                try:
                    measure(stack, args, inventory_path, figures)
                finally:
                    signal.alarm(0)
    except BenchTimeout as err:
        error = str(err)
    except (RuntimeError, AssertionError) as err:
        error = f"{type(err).__name__}: {err}"
    figures["error"] = error
    board_p95 = figures.get("board_s", {}).get("p95")
    figures["ok"] = bool(not error and figures.get("waiting", 0) >= args.n and board_p95 is not None)
    figures["target_met"] = bool(figures["ok"] and board_p95 <= 0.300 and figures["ratio_p95"] <= 1.5)
    print(json.dumps({k: v for k, v in figures.items()}, ensure_ascii=False, indent=1))
    write_json(args.json, figures)
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
