"""Steps 5 and 6 as a request runs them, through the real Airflow tasks, against the same work by hand.

Run from the repository root: `.venv/bin/python -m bench.request_timing [--mib 256] [-r 3] [--json PATH]
[--timeout S]`. The defaults (256 MiB, 3 requests of each kind: 9 requests) are sized for about 15 minutes
on a 2-core machine: at 16 MiB a request took about 55 s through Airflow (most of it step 1 and the four
decisions, not data), and 256 MiB adds some seconds of data work to each request and its by-hand twin.

On a throwaway stack (`bench.common.throwaway_stack`: LocalExecutor, its private PostgreSQL, the backup
host's sshd on 127.0.0.1 and the inventory's deposited servers in their own mount namespaces), for the
sample request's server (`fileserver01`, 127.0.0.2), one request at a time, each followed by the same
work typed by hand (alternated, so that the page cache, restic's caches and the machine's load favour
neither side):

1. backup: R backup requests, request k for a folder of `--mib` MiB of fresh random data
   (incompressible, nothing to deduplicate). The same work by hand, on another fresh folder of the same
   size, over the same hops and into the same repository: `restic backup` on the server through the push
   path (the server's key, `rclone serve restic --append-only` over SSH), `restic check` on the backup
   host, `restic dump` of one file on the server through the push path and `cmp` with the original.
   For the end-to-end sum, also the set-up commands of a policy: `restic init` and `restic key add`
   (into a scratch repository) on the backup host and `ssh-keygen` on the server.
2. restore onto the server: R restore requests (delivery "server") of the first backup's folder, as of
   a moment just after that backup (so each chooses the same snapshot). By hand: `restic snapshots` on
   the backup host (finding the snapshot), then `restic restore <snapshot> --target <folder> --include
   <path>` on the server through the push path.
3. Restore File archive: R restore requests (delivery "archive"), the same folder and snapshot. By hand on
   the backup host: `restic snapshots`, then `restic dump --archive tar <snapshot> <path> | zstd -T0 -1`
   into a file followed by `sha256sum` of it, and the same followed by `openssl dgst -sha256` (both
   measured, in alternating order); the baseline is the one with the lower median.

Every decision of every request is answered as soon as it waits (`stack.rest_driver.carry_through`:
approve, record and endorse the server-details document, order staff), by the roster's people over the
REST API. The Airflow side is read from Airflow's own task instances (REST API start and end dates):

- `backup_policy`: `test_backup` start → `test_restore` end (the push backup, `restic check`, the test
  restore: the tasks that run the backup over SSH and verify it, with Airflow's hand-overs between them);
- `restore_to_server`: `restore_to_server` start → `verify_restore` end;
- `restore_archive`: `restore_archive` start → `verify_archive` end;
- end to end: the request filed (the trigger's POST) → `policy_active` end (the policy live), and → the
  delivery's check ended (the Restore File delivered and verified), against the sum of the by-hand
  commands the same work needs (the floor Airflow's scheduling and the people's turns add to; here the
  people answer at once).

Keys of `--json` (besides `machine`, added by `bench.common.write_json`); a "spread" is
`bench.common.spread` (`n`, `median`, `p95`, `min`, `max`):

- `benchmark` ("request_timing"), `mib` (per folder), `files` (per folder), `requests` (R, of each kind),
  `stack_start_s`, `timed_out`, `error` (why it stopped early, else null)
- `steps`: for `backup_policy`, `restore_to_server`, `restore_archive`: `airflow_s` (spread),
  `by_hand_s` (spread), `by_hand_command` (what was typed), `ratio_median` (median / median), and
  `airflow_tasks` (the task ids of the span) and `airflow_running_s` (spread of the sum of those
  tasks' own run times: the span less Airflow's hand-overs between them)
- `end_to_end`: `filed_to_policy_live_s`, `filed_to_restore_delivered_s` (both deliveries),
  `by_hand_policy_s`, `by_hand_restore_s` (spreads), `ratio_policy`, `ratio_restore` (median / median)
- `archive_baselines`: `sha256sum_s`, `openssl_dgst_s` (spreads of the by-hand archive with each), `chosen`
- `runs`: per request, `kind`, `run_id`, `filed` (epoch), `state`, the step's span and its tasks' own
  run times (`tasks_s`, by task id), and the by-hand twin's seconds (`by_hand_s`; for a backup its parts
  `by_hand_parts_s`, for a restore `by_hand_find_s` and for an archive `by_hand_sha256sum_s`,
  `by_hand_openssl_s`): where a missed ratio's time goes
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import BenchTimeout, bound, spread, throwaway_stack, write_json
from bench.hosts import ssh_to, timed
from sb87 import steps
from sb87.settings import PROJECT_ROOT
from stack import Stack
from stack.deposited_server import CLIENT_DIR
from stack.rest_driver import DAG_ID, carry_through, trigger, wait_for_run

SAMPLE_FILE = PROJECT_ROOT / "config" / "sample_request.json"
INVENTORY_FILE = PROJECT_ROOT / "config" / "inventory.json"
FIRST_MEMO = 9500  # far above the outgoing numbers a fresh register hands out, and apart from bench/burst.py's
PER_FILE_MIB = 32
BACKUP_SPAN = (steps.BACKUP_POLICY.task("test_backup"), steps.BACKUP_POLICY.task("check_repository"),
               steps.BACKUP_POLICY.task("test_restore"))
SPANS = {"backup_policy": BACKUP_SPAN, "restore_to_server": steps.TO_SERVER, "restore_archive": steps.ARCHIVE}
RUN_TIMEOUT_S = 900.0


def _ts(value: str | None) -> float | None:
    """Epoch seconds of an API timestamp (ISO 8601), None for none."""
    return datetime.fromisoformat(value).timestamp() if value else None


def _ratio(numerator: dict[str, float], denominator: dict[str, float]) -> float | None:
    if not numerator or not denominator or not denominator["median"]:
        return None
    return numerator["median"] / denominator["median"]


class Bench:
    """The stack, its hosts as an operator reaches them, and the figures as they are measured."""

    def __init__(self, stack: Stack, mib: int) -> None:
        self.stack = stack
        self.mib = mib
        sample = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
        self.sample = sample
        hostname = sample["servers"][0]["hostname"]
        inventory = {e["hostname"]: e for e in json.loads(INVENTORY_FILE.read_text(encoding="utf-8"))["servers"]}
        self.entry = inventory[hostname]
        self.server = stack.deposited_server(hostname)
        known = stack.home / "bench-known-hosts"
        known.write_text(stack.sshd.known_hosts_line() + "\n")
        self.on_backup_host = ssh_to(stack.sshd.client_key, stack.ports["ssh"], stack.sshd.login, "127.0.0.1", known)
        self.repository = str(stack.backup_dir / "repos" / self.entry["id"])
        self.master = str(stack.restic_password_file)
        self.client_dir = f"{CLIENT_DIR}/{self.entry['id']}"
        self.folder_root = f"{self.entry['data_roots'][0]}/bench-timing"
        self.scratch = str(stack.home / "by-hand")  # on the backup host's disk, apart from the pipeline's
        self.memo = FIRST_MEMO
        self.runs: list[dict[str, Any]] = []
        self.airflow: dict[str, list[float]] = {name: [] for name in SPANS}
        self.running: dict[str, list[float]] = {name: [] for name in SPANS}
        self.hand: dict[str, list[float]] = {"backup_policy": [], "restore_to_server": [],
                                             "sha256sum": [], "openssl": []}
        self.policy_live: list[float] = []
        self.delivered: list[float] = []
        self.hand_policy: list[float] = []
        self.hand_snapshots: list[float] = []
        self.hand_restore: list[float] = []  # by hand, onto the server: finding the snapshot + the restore
        self.archive_finds: list[float] = []  # by hand, archive: finding the snapshot (the hash is chosen later)

    # ------------------------------------------------------------------ data

    def write_folder(self, name: str) -> tuple[str, int]:
        """A folder of `mib` MiB of fresh random data on the server's own disk; (path, files)."""
        folder = f"{self.folder_root}/{name}"
        files = max(1, self.mib // PER_FILE_MIB)
        per_file = self.mib // files
        self.server.inside(["sh", "-c", f'mkdir -p "$1" && for i in $(seq 1 {files}); do '
                            f'head -c {per_file}M /dev/urandom > "$1/ไฟล์ $i.bin"; done', "gen", folder])
        return folder, files

    # ------------------------------------------------------------------ Airflow

    def file_and_carry(self, kind: str, conf: dict[str, Any]) -> dict[str, Any]:
        """File one request as staff, answer each decision as soon as it waits, wait for the run's end;
        returns the run's record with its task instances by id."""
        self.memo += 1
        conf = {**conf, "memo_no": f"ทล 0601/{self.memo}"}
        staff = self.stack.client("staff_somchai")
        filed = time.time()
        status, body = trigger(staff, conf)
        if status != 200:
            raise RuntimeError(f"trigger of a {kind} request refused: HTTP {status} {body}")
        run_id = body["dag_run_id"]
        carry_through(self.stack.client, run_id)
        state = wait_for_run(staff, run_id, timeout=RUN_TIMEOUT_S)
        status, listing = self.stack.client().get(f"dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                                                  limit=100)
        if status != 200:
            raise RuntimeError(f"task instances of {run_id}: HTTP {status} {listing}")
        tis = {ti["task_id"]: ti for ti in listing["task_instances"]}
        record = {"kind": kind, "run_id": run_id, "filed": filed, "state": state}
        self.runs.append(record)
        if state != "success":
            failed = sorted(t for t, ti in tis.items() if ti["state"] in ("failed", "upstream_failed"))
            raise RuntimeError(f"{kind} request {run_id} ended {state}; failed tasks: {failed}")
        return {**record, "tis": tis}

    def span(self, name: str, run: dict[str, Any]) -> float:
        """The step's span in Airflow's own record (first task's start → last task's end), kept with the
        tasks' own run times."""
        tis = [run["tis"][task_id] for task_id in SPANS[name]]
        start, end = _ts(tis[0]["start_date"]), _ts(tis[-1]["end_date"])
        seconds = end - start
        own = sum(_ts(ti["end_date"]) - _ts(ti["start_date"]) for ti in tis)
        self.airflow[name].append(seconds)
        self.running[name].append(own)
        self.runs[-1].update({f"{name}_s": seconds, f"{name}_running_s": own,
                              "tasks_s": {task_id: _ts(ti["end_date"]) - _ts(ti["start_date"])
                                          for task_id, ti in zip(SPANS[name], tis, strict=True)}})
        return seconds

    def since_filed(self, run: dict[str, Any], task_id: str) -> float:
        return _ts(run["tis"][task_id]["end_date"]) - run["filed"]

    # ------------------------------------------------------------------ by hand

    def on_server(self, command: str) -> Callable[[], Any]:
        return lambda: self.server.ssh(command)

    def on_host(self, command: str) -> Callable[[], Any]:
        return lambda: self.on_backup_host(command)

    def push_restic(self, args: str) -> str:
        """restic on the server through the push path, as the pipeline's own scripts reach the repository."""
        return (f"cd {self.client_dir} && RESTIC_PASSWORD_FILE=password RESTIC_CACHE_DIR=cache "
                f"restic -r rclone:sb87 -o rclone.program=./rclone-over-ssh {args}")

    def host_restic(self, args: str) -> str:
        """restic on the backup host, on the server's repository, with the master password."""
        return f"restic -r {shlex.quote(self.repository)} --password-file {shlex.quote(self.master)} {args}"

    def policy_by_hand(self, turn: int, folder: str, first_file: str) -> float:
        """The policy's work by hand; returns the backup + check + test restore part (the step's span)."""
        scratch = f"{self.scratch}/policy-{turn}"
        setup, _ = timed("policy set-up by hand (backup host)", self.on_host(
            f"mkdir -p {scratch} && restic init -q -r {scratch}/repo --password-file {shlex.quote(self.master)} && "
            f"head -c 32 /dev/urandom | base64 > {scratch}/client-password && "
            f"restic -q -r {scratch}/repo --password-file {shlex.quote(self.master)} key add "
            f"--new-password-file {scratch}/client-password"))
        keygen, _ = timed("policy set-up by hand (server)", self.on_server(
            f"ssh-keygen -q -t ed25519 -N '' -C by-hand -f /var/tmp/sb87-by-hand-{turn}"))
        backup, _ = timed("backup by hand", self.on_server(self.push_restic(f"backup -q {shlex.quote(folder)}")))
        check, _ = timed("restic check by hand", self.on_host(self.host_restic("check -q")))
        restored = f"/var/tmp/sb87-by-hand-sample-{turn}"
        test, _ = timed("test restore by hand", self.on_server(
            self.push_restic(f"dump latest {shlex.quote(first_file)}") + f" > {restored} && "
            f"cmp {shlex.quote(first_file)} {restored}"))
        # Not timed: what the by-hand run left behind.
        self.on_backup_host(f"rm -rf {scratch}")
        self.server.ssh(f"rm -f {restored} /var/tmp/sb87-by-hand-{turn} /var/tmp/sb87-by-hand-{turn}.pub")
        step = backup + check + test
        self.hand["backup_policy"].append(step)
        self.hand_policy.append(setup + keygen + step)
        self.runs[-1]["by_hand_s"] = step
        self.runs[-1]["by_hand_parts_s"] = {"init_and_key_add": setup, "ssh_keygen": keygen, "backup": backup,
                                            "check": check, "dump_and_cmp": test}
        return step

    def snapshots_by_hand(self) -> float:
        seconds, _ = timed("restic snapshots by hand", self.on_host(self.host_restic("snapshots -q --json")))
        self.hand_snapshots.append(seconds)
        return seconds

    def restore_to_server_by_hand(self, turn: int, snapshot: str, folder: str) -> None:
        find = self.snapshots_by_hand()
        target = f"{self.entry['data_roots'][0]}/by-hand-restore-{turn}"
        seconds, _ = timed("restore by hand", self.on_server(self.push_restic(
            f"restore {snapshot} --target {target} --include {shlex.quote(folder)}")))
        self.server.ssh(f"rm -rf {target}")  # not timed
        self.hand["restore_to_server"].append(seconds)
        self.runs[-1]["by_hand_s"] = seconds
        self.runs[-1]["by_hand_find_s"] = find
        self.hand_restore.append(find + seconds)

    def archive_by_hand(self, turn: int, snapshot: str, folder: str) -> None:
        find = self.snapshots_by_hand()
        archive = f"{self.scratch}/by-hand-{turn}.tar.zst"
        dump = (f"mkdir -p {self.scratch} && {self.host_restic(f'dump --archive tar {snapshot} {shlex.quote(folder)}')}"
                f" | zstd -T0 -1 -q -f -o {archive}")
        tools = {"sha256sum": f"sha256sum {archive}", "openssl": f"openssl dgst -sha256 -r {archive}"}
        order = list(tools) if turn % 2 else list(reversed(tools))
        for tool in order:
            seconds, _ = timed(f"archive by hand ({tool})", self.on_host(f"{dump} && {tools[tool]}"))
            self.hand[tool].append(seconds)
            self.runs[-1][f"by_hand_{tool}_s"] = seconds
        self.on_backup_host(f"rm -f {archive}")  # not timed
        self.runs[-1]["by_hand_find_s"] = find
        self.archive_finds.append(find)


def _measure(bench: Bench, requests: int, figures: dict[str, Any]) -> None:
    """Everything, one request at a time, each followed by its by-hand twin; `figures` is filled in as it
    goes (a timeout keeps what was measured)."""
    backup_conf = copy.deepcopy(bench.sample)
    as_of = first_folder = first_snapshot = None
    for k in range(1, requests + 1):
        folder, files = bench.write_folder(f"นโยบาย {k}")
        hand_folder, _ = bench.write_folder(f"ด้วยมือ {k}")
        figures["files"] = files
        backup_conf["servers"][0].update(paths=[folder], size_gb=round(bench.mib / 1024, 3))
        run = bench.file_and_carry("backup", backup_conf)
        seconds = bench.span("backup_policy", run)
        bench.policy_live.append(bench.since_filed(run, steps.POLICY_ACTIVE))
        if k == 1:
            # Every restore request asks for this folder as of now: the newest snapshot by then is this one.
            first_folder = folder
            [result] = [r for r in _xcom(bench, run["run_id"], BACKUP_SPAN[0]) if r.get("action") == "test_backup"]
            first_snapshot = result["summary"]["snapshot_id"]
            time.sleep(1.0)
            as_of = datetime.now(UTC).isoformat()
            time.sleep(1.0)
        hand = bench.policy_by_hand(k, hand_folder, f"{hand_folder}/ไฟล์ 1.bin")
        print(f"backup {k}: Airflow {seconds:.1f} s, by hand {hand:.1f} s; filed → policy live "
              f"{bench.policy_live[-1]:.1f} s, by hand {bench.hand_policy[-1]:.1f} s", flush=True)
        _summarise(bench, figures)

    restore_conf = {key: value for key, value in copy.deepcopy(bench.sample).items() if key != "servers"}
    restore_conf["services"] = ["restore"]
    for k in range(1, requests + 1):
        for delivery, name, verify in (("server", "restore_to_server", steps.TO_SERVER[1]),
                                       ("archive", "restore_archive", steps.ARCHIVE[1])):
            conf = {**restore_conf, "restore": {"hostname": bench.entry["hostname"], "paths": [first_folder],
                                                "as_of": as_of, "delivery": delivery}}
            run = bench.file_and_carry(delivery, conf)
            seconds = bench.span(name, run)
            bench.delivered.append(bench.since_filed(run, verify))
            if delivery == "server":
                bench.restore_to_server_by_hand(k, first_snapshot, first_folder)
                hand = bench.runs[-1]["by_hand_s"]
                # The restored folder is the unit's now; here it only fills the server's memory.
                bench.server.ssh(f"rm -rf {shlex.quote(bench.entry['restore_root'])}/*")
            else:
                bench.archive_by_hand(k, first_snapshot, first_folder)
                hand = min(bench.runs[-1]["by_hand_sha256sum_s"], bench.runs[-1]["by_hand_openssl_s"])
            print(f"{name} {k}: Airflow {seconds:.1f} s, by hand {hand:.1f} s; filed → delivered "
                  f"{bench.delivered[-1]:.1f} s", flush=True)
            _summarise(bench, figures)


def _xcom(bench: Bench, run_id: str, task_id: str) -> Any:
    status, body = bench.stack.client().get(f"dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                                            f"{task_id}/xcomEntries/return_value")
    if status != 200:
        raise RuntimeError(f"XCom of {task_id} in {run_id}: HTTP {status} {body}")
    return body["value"]


def _summarise(bench: Bench, figures: dict[str, Any]) -> None:
    """The figures from what has been measured so far."""
    sha, ssl = spread(bench.hand["sha256sum"]), spread(bench.hand["openssl"])
    chosen = "openssl" if ssl and sha and ssl["median"] < sha["median"] else "sha256sum"
    hashing = {"sha256sum": "sha256sum <file>", "openssl": "openssl dgst -sha256 -r <file>"}
    commands = {
        "backup_policy": ("on the server: restic -r rclone:sb87 -o rclone.program=./rclone-over-ssh backup <folder>; "
                          "on the backup host: restic -r <repository> check; on the server: restic -r rclone:sb87 "
                          "-o rclone.program=./rclone-over-ssh dump latest <file> > <copy> && cmp <file> <copy>"),
        "restore_to_server": ("on the server: restic -r rclone:sb87 -o rclone.program=./rclone-over-ssh restore "
                              "<snapshot> --target <folder> --include <path>"),
        "restore_archive": ("on the backup host: restic -r <repository> dump --archive tar <snapshot> <path> | "
                            f"zstd -T0 -1 -q -f -o <file> && {hashing[chosen]}"),
    }
    by_hand = {"backup_policy": bench.hand["backup_policy"], "restore_to_server": bench.hand["restore_to_server"],
               "restore_archive": bench.hand[chosen]}
    figures["steps"] = {}
    for name in SPANS:
        airflow, hand = spread(bench.airflow[name]), spread(by_hand[name])
        figures["steps"][name] = {"airflow_s": airflow, "by_hand_s": hand, "by_hand_command": commands[name],
                                  "ratio_median": _ratio(airflow, hand), "airflow_tasks": list(SPANS[name]),
                                  "airflow_running_s": spread(bench.running[name])}
    # By hand, a restore is finding the snapshot and then the delivery; one value a request, both deliveries.
    restore_sums = bench.hand_restore + [find + hashed for find, hashed in zip(bench.archive_finds,
                                                                                 bench.hand[chosen], strict=False)]
    policy_live, delivered = spread(bench.policy_live), spread(bench.delivered)
    hand_policy, hand_restore = spread(bench.hand_policy), spread(restore_sums)
    figures["end_to_end"] = {"filed_to_policy_live_s": policy_live, "filed_to_restore_delivered_s": delivered,
                             "by_hand_policy_s": hand_policy, "by_hand_restore_s": hand_restore,
                             "ratio_policy": _ratio(policy_live, hand_policy),
                             "ratio_restore": _ratio(delivered, hand_restore)}
    figures["archive_baselines"] = {"sha256sum_s": sha, "openssl_dgst_s": ssl, "chosen": chosen}
    figures["runs"] = [{k: v for k, v in run.items() if k != "tis"} for run in bench.runs]


def _print(figures: dict[str, Any]) -> None:
    def med(value: dict[str, float]) -> str:
        return f"{value['median']:6.1f} s (n={value['n']})" if value else "     -"

    print(f"\n== request timing: {figures['requests']} requests of each kind, {figures['mib']} MiB a folder"
          + (" (TIMED OUT)" if figures["timed_out"] else ""))
    for name, row in figures.get("steps", {}).items():
        ratio = f"{row['ratio_median']:.2f}" if row["ratio_median"] else "-"
        print(f"{name:<18s} Airflow {med(row['airflow_s'])}  by hand {med(row['by_hand_s'])}  ratio {ratio}"
              f"  (tasks' own run time {med(row['airflow_running_s'])})")
    e2e = figures.get("end_to_end")
    if e2e:
        for label, key, hand, ratio in (("filed → policy live", "filed_to_policy_live_s", "by_hand_policy_s",
                                         "ratio_policy"),
                                        ("filed → restore delivered", "filed_to_restore_delivered_s",
                                         "by_hand_restore_s", "ratio_restore")):
            value = f"{e2e[ratio]:.2f}" if e2e[ratio] else "-"
            print(f"{label:<26s} {med(e2e[key])}  by hand {med(e2e[hand])}  ratio {value}")
    baselines = figures.get("archive_baselines")
    if baselines:
        print(f"archive by hand: sha256sum {med(baselines['sha256sum_s'])}, openssl dgst "
              f"{med(baselines['openssl_dgst_s'])}; baseline: {baselines['chosen']}")


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 steps 5 and 6 through Airflow against by hand")
    parser.add_argument("--mib", type=int, default=256, help="MiB of random data in each backed-up folder")
    parser.add_argument("-r", "--requests", type=int, default=3, help="requests of each kind")
    parser.add_argument("--json", type=Path, help="write the figures here (read by bench/report/)")
    parser.add_argument("--timeout", type=float, default=1200, help="bound of the whole benchmark, seconds")
    args = parser.parse_args()
    figures: dict[str, Any] = {"benchmark": "request_timing", "mib": args.mib, "requests": args.requests,
                               "timed_out": False, "error": None}
    bound(args.timeout)
    try:
        with throwaway_stack("request-timing") as stack:
            try:
                figures["stack_start_s"] = round(stack.start_seconds, 1)
                stack.wait_for_dag(DAG_ID, timeout=180)
                _measure(Bench(stack, args.mib), args.requests, figures)
            finally:
                signal.alarm(0)  # stopping the stack must not be cut short by the bound
    except BenchTimeout as err:
        figures["timed_out"], figures["error"] = True, str(err)
    except (RuntimeError, AssertionError, SystemExit) as err:  # a refused trigger, a failed run or command
        figures["error"] = f"{type(err).__name__}: {err}"
    _print(figures)
    if figures["error"]:
        print(f"stopped early: {figures['error']}")
    write_json(args.json, figures)
    return 0 if not figures["error"] else 1


if __name__ == "__main__":
    sys.exit(main())
