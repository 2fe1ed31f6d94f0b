"""The recoverability drill's restore against `restic restore` of the same files by hand, side by side.

On one machine, as bench/restore_throughput.py: the backup host (an sshd on 127.0.0.1) and a deposited
server (its own sshd, mount namespace and tmpfs data on 127.0.0.2). `--mib` MiB of incompressible data
(1 GiB by default, in 16 MiB files) is written on the server and backed up by the pipeline's own
`test_backup`; then the drill draws its sample (bounded to the whole data set, so it is every file), and,
alternated, best of two each:

1. the drill's `drill_restore` script on the server: restore of the sample into a scratch folder with
   `restic restore --verify`, then each restored file's SHA-256 against the live file's;
2. by hand: `restic restore <snapshot> --target <folder> --include <file>...` of the same files through
   the same push path (rclone over SSH into the append-only repository), nothing else.

Also printed: the whole drill (its plan on the backup host, the restore, the month's check slice).
Prints seconds, MiB/s and the ratio drill / by hand (target ≤ 1.3).
The host set-up is bench/hosts.py's, shared with bench/restore_throughput.py.
Usage: `python -m bench.drill_restore [--mib 1024] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bound, write_json
from bench.hosts import CONN_ID, data_path_hosts, policy_request, timed

DATA_ROOT = "/srv/sb87-bench-drill"
SAMPLE = f"{DATA_ROOT}/ข้อมูล ทดสอบ"
SERVER_ID = "bench-drill"


def _timed(what: str, run: Callable[[], subprocess.CompletedProcess]) -> tuple[float, str]:
    seconds, out = timed(what, run)
    return seconds, out.decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 recoverability drill against restic restore by hand")
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="also write the figures to this file (for BENCHMARKS.md)")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    bound(args.timeout)
    with tempfile.TemporaryDirectory(prefix="sb87-drill-bench-") as tmp, \
            data_path_hosts(Path(tmp), SERVER_ID, DATA_ROOT) as hosts:
        from sb87.backup.backends import parse_results, render_script
        from sb87.backup.drill import choose_sample, files_of_listing, restore_command, run_drill

        server, on_backup_host, endpoint = hosts.server, hosts.on_backup_host, hosts.endpoint

        def checked(done: subprocess.CompletedProcess) -> str:
            if done.returncode != 0:
                raise RuntimeError(done.stderr.decode(errors="replace")[-500:])
            return done.stdout.decode(errors="replace")

        request = policy_request("ทล 0601/8002", SAMPLE, args.mib)
        files, mib = hosts.write_sample(SAMPLE, args.mib, per_file=16)

        # --- the policy as step 5 creates it, and one backup
        hosts.create_policy(request)
        _timed("test_backup", lambda: server.ssh(render_script("test_backup", request, "bench", server=SERVER_ID,
                                                               **endpoint)))

        # --- the drill's sample: bounded to the whole data set, so every file
        policy = {"server_id": SERVER_ID, "hostname": "fileserver01", "ssh_conn_id": CONN_ID}
        _, listing = _timed("drill_plan", lambda: on_backup_host(render_script(
            "drill_plan", {"servers": [{"id": SERVER_ID, "hostname": "fileserver01"}]}, "bench")))
        [plan] = [r for r in parse_results(listing) if r.get("action") == "drill_plan"]
        snapshot = plan["snapshot"]["id"]
        sample = choose_sample(files_of_listing(listing), [DATA_ROOT], 10_000, mib * 2**20,
                               random.Random(1))  # noqa: S311 - a sample, not a secret
        assert len(sample.files) == files, (len(sample.files), files)
        client_dir = hosts.client_dir
        includes = " ".join(f"--include {shlex.quote(f.path)}" for f in sample.files)
        drill_s = hand_s = float("inf")
        for turn in (1, 2):
            command, _ = restore_command(policy, f"bench-{turn}", snapshot, sample, {})
            seconds, out = _timed("drill_restore", lambda c=command: server.ssh(c))
            verdicts = [r["verdict"] for r in parse_results(out) if r.get("action") == "drill_file"]
            assert verdicts == ["verified"] * files, verdicts
            drill_s = min(drill_s, seconds)
            target = f"/var/tmp/sb87-by-hand-{turn}"
            by_hand = (f"cd {client_dir} && RESTIC_PASSWORD_FILE=password RESTIC_CACHE_DIR=cache "
                       f"restic -o rclone.program=./rclone-over-ssh -r rclone:sb87 restore {snapshot} "
                       f"--target {target} {includes} && rm -rf {target}")
            seconds, _ = _timed("restore by hand", lambda c=by_hand: server.ssh(c))
            hand_s = min(hand_s, seconds)
        whole_started = time.perf_counter()
        result = run_drill(policy, [DATA_ROOT], lambda c: checked(on_backup_host(c)),
                           lambda c: checked(server.ssh(c)), run_id="bench-whole",
                           today=datetime.now(UTC).date(), max_files=10_000, max_bytes=mib * 2**20)
        whole_s = time.perf_counter() - whole_started
        assert result.state == "passed", result.reasons + result.notes

    def row(what: str, seconds: float) -> str:
        return f"  {what:<62s} {seconds:7.1f} s  {mib / seconds:7.0f} MiB/s"

    print(f"sample: {mib} MiB in {files} files (random, incompressible), on the deposited server's own disk")
    print("restore of the sample onto the deposited server, through the push path (best of two, alternated)")
    print(row("drill_restore (restore --verify into scratch + SHA-256 vs live)", drill_s))
    print(row("by hand: restic restore --include <the same files>", hand_s))
    print(f"  ratio drill / by hand: {drill_s / hand_s:.2f}   (target <= 1.3)")
    print(row("the whole drill (plan + restore + compare + check slice "
              f"{result.check_subset})", whole_s))
    print(f"  drill's own throughput {result.throughput / 2**20:.0f} MiB/s; "
          f"estimated full restore {result.estimated_full_restore_seconds:.1f} s")
    if args.json:
        write_json(args.json, {"mib": mib, "files": files, "drill_restore_s": drill_s, "by_hand_s": hand_s,
                               "ratio": drill_s / hand_s, "whole_drill_s": whole_s,
                               "check_subset": result.check_subset})
    return 0


if __name__ == "__main__":
    sys.exit(main())
