"""Backup and restore throughput of the data path, pipeline scripts against the same work by hand.

On one machine: the backup host (an sshd on 127.0.0.1) and a deposited server (its own sshd,
mount namespace and tmpfs data on 127.0.0.2, stack/deposited_server.py). A sample of incompressible
data (1 GiB by default) is written on the server's own disk, then, side by side in one run:

1. backup: the pipeline's `test_backup` (restic on the server, pushing through SSH to
   `rclone serve restic --append-only` on the backup host) against `restic backup` typed by hand on
   the server, once through the same push path into a fresh repository and once into a repository
   on the server's own disk (no network at all);
2. step 6, archive: the pipeline's `restore_file` (restic dump --archive tar | zstd -T0 -1, SHA-256
   and per-file manifest in the same pass) against `restic dump --archive tar … | zstd -T0 -1 > f`
   followed by `sha256sum f`, typed by hand on the backup host;
3. step 6, onto the server: the pipeline's `restore_to_server` against `restic restore` by hand.

Every pipeline script is the one `render_script` returns, run over SSH with the host key pinned.
Prints seconds, MiB/s and the ratio pipeline / by hand (target ≤ 1.3).
Usage: `python -m bench.restore_throughput [--mib 1024] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import bound, write_json
from stack.deposited_server import CLIENT_DIR, DepositedServer
from stack.sshd import Sshd

DATA_ROOT = "/srv/sb87-bench"
SAMPLE = f"{DATA_ROOT}/ข้อมูล ทดสอบ"


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _timed(what: str, run: Callable[[], subprocess.CompletedProcess]) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = run()
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{what} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return seconds, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 data path throughput")
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="also write the figures to this file (for BENCHMARKS.md)")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    bound(args.timeout)
    with tempfile.TemporaryDirectory(prefix="sb87-throughput-") as tmp:
        root = Path(tmp)
        password = root / "master-password"
        password.write_text("bench-only-master-password\n")
        backup = Sshd(root / "backup-host", _free_port("127.0.0.1"))
        inventory = root / "inventory.json"
        servers = [{"id": sid, "hostname": "fileserver01", "address": "127.0.0.2", "ssh_conn_id": "sb87_srv_bench",
                    "data_roots": [DATA_ROOT], "restore_root": f"{DATA_ROOT}/SB87-restore"}
                   for sid in ("bench-pipeline",)]
        inventory.write_text(json.dumps({"servers": servers}), encoding="utf-8")
        os.environ.update({
            "SB87_REPO_ROOT": str(root / "repos"), "SB87_SCRATCH_ROOT": str(root / "scratch"),
            "SB87_DROP_DIR": str(root / "drop"), "SB87_CRON_DIR": str(root / "cron.d"),
            "SB87_RESTIC_PASSWORD_FILE": str(password), "SB87_INVENTORY_FILE": str(inventory),
            "SB87_PUSH_KEYS_FILE": str(backup.push_authorized_keys),
        })
        from sb87.backup.backends import parse_results, render_script
        from sb87.backup.datapath import install_client_password

        backup.prepare()
        sshd = subprocess.Popen(backup.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        server = DepositedServer(root / "deposited", "127.0.0.2", _free_port("127.0.0.2"), data_roots=[DATA_ROOT])
        try:
            server.start()
            time.sleep(0.5)
            known = root / "known_hosts"
            known.write_text(backup.known_hosts_line() + "\n")
            os.environ["AIRFLOW_CONN_SB87_BACKUP_HOST"] = backup.connection_json()
            os.environ["AIRFLOW_CONN_SB87_SRV_BENCH"] = server.connection_json()

            def on_backup_host(command: str) -> subprocess.CompletedProcess:
                return subprocess.run(
                    ["ssh", "-i", str(backup.client_key), "-p", str(backup.port), "-o", f"UserKnownHostsFile={known}",
                     "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{backup.login}@127.0.0.1", command],
                    capture_output=True, check=False)

            endpoint = {"backup_host": "127.0.0.1", "backup_port": backup.port, "backup_login": backup.login,
                        "backup_host_key": backup.host_key_line()}
            request = {"memo_no": "ทล 0601/8001", "agency": "bench",
                       "servers": [{"hostname": "fileserver01", "address": "127.0.0.2", "os": "linux",
                                    "paths": [SAMPLE], "size_gb": args.mib / 1024}],
                       "retention": {"daily": 7, "weekly": 4, "monthly": 6}, "schedule": "daily 01:00"}
            files = max(1, args.mib // 128)
            per_file = args.mib // files
            server.inside(["sh", "-c", f'mkdir -p "$1" && for i in $(seq 1 {files}); do '
                           f'head -c {per_file}M /dev/urandom > "$1/ไฟล์ $i.bin"; done', "gen", SAMPLE])
            mib = files * per_file

            # --- the policy, as step 5 creates it
            on_backup_host(render_script("create_policy", request, "bench"))
            install_client_password("sb87_backup_host", "sb87_srv_bench",
                                    f"{root}/repos/bench-pipeline.policy/client-password",
                                    f"{CLIENT_DIR}/bench-pipeline/password")
            [client] = parse_results(server.ssh(render_script("client_policy", request, "bench",
                                                              server="bench-pipeline", **endpoint)).stdout)
            on_backup_host(render_script("authorize_push", request, "bench", push_public_key=client["push_public_key"]))

            # --- 1. backup
            pipeline_backup, _ = _timed("test_backup", lambda: server.ssh(render_script(
                "test_backup", request, "bench", server="bench-pipeline", **endpoint)))
            # By hand through the same push path, into a fresh repository (no deduplication against the first).
            fresh = f"{root}/repos/bench-by-hand"
            subprocess.run(["restic", "init", "-q", "-r", fresh, "--password-file",  # the server's key opens it
                            f"{root}/repos/bench-pipeline.policy/client-password"], check=True)
            # The by-hand push reuses the server's key, pointed at the fresh repository for the run.
            keys = backup.push_authorized_keys.read_text()
            backup.push_authorized_keys.write_text(keys.replace(f"{root}/repos/bench-pipeline", fresh))
            client_dir = f"{CLIENT_DIR}/bench-pipeline"
            hand_push, _ = _timed("backup by hand (push path)", lambda: server.ssh(
                f"cd {client_dir} && RESTIC_PASSWORD_FILE=password RESTIC_CACHE_DIR=cache-hand "
                f"restic -r rclone:x -o rclone.program=./rclone-over-ssh backup -q '{SAMPLE}'"))
            backup.push_authorized_keys.write_text(keys)
            hand_local, _ = _timed("backup by hand (server's own disk)", lambda: server.ssh(
                f"export RESTIC_PASSWORD_FILE={client_dir}/password; restic init -q -r {DATA_ROOT}/local-repo && "
                f"restic -r {DATA_ROOT}/local-repo backup -q --cache-dir {DATA_ROOT}/cache '{SAMPLE}'"))

            # --- 2. step 6 as an archive on the drop
            request["services"] = ["backup", "restore"]
            from datetime import UTC, datetime

            request["restore"] = {"hostname": "fileserver01", "paths": [SAMPLE], "as_of": datetime.now(UTC).isoformat()}
            [listing] = parse_results(on_backup_host(render_script("list_snapshots", request, "bench")).stdout)
            snapshot = listing["snapshots"][-1]["id"]
            repo = f"{root}/repos/bench-pipeline"
            # Alternated, best of two each: the first run of anything warms the page cache and restic's
            # cache for the next, and a shared machine's load comes and goes.
            pipeline_archive = hand_archive = fast_hand_archive = pipeline_server = hand_server = float("inf")
            for turn in (1, 2):
                script = render_script("restore_file", request, f"bench-{turn}", snapshot=snapshot)
                seconds, out = _timed("restore_file", lambda s=script: on_backup_host(s))
                pipeline_archive = min(pipeline_archive, seconds)
                package = parse_results(out)[0]
                by_hand = (f"export RESTIC_PASSWORD_FILE={password}; restic -r {repo} dump --archive tar {snapshot} "
                           f"'{SAMPLE}' | zstd -T0 -1 -q > {root}/by-hand.tar.zst && sha256sum {root}/by-hand.tar.zst")
                seconds, _ = _timed("archive by hand", lambda c=by_hand: on_backup_host(c))
                hand_archive = min(hand_archive, seconds)
                # The same by hand with the fastest SHA-256 on the machine (OpenSSL's, as the pipeline uses).
                by_hand = (f"export RESTIC_PASSWORD_FILE={password}; restic -r {repo} dump --archive tar {snapshot} "
                           f"'{SAMPLE}' | zstd -T0 -1 -q -f -o {root}/by-hand.tar.zst && "
                           f"openssl dgst -sha256 -r {root}/by-hand.tar.zst")
                seconds, _ = _timed("archive by hand (openssl)", lambda c=by_hand: on_backup_host(c))
                fast_hand_archive = min(fast_hand_archive, seconds)
                script = render_script("restore_to_server", request, f"bench-{turn}", server="bench-pipeline",
                                       snapshot=snapshot, **endpoint)
                seconds, _ = _timed("restore_to_server", lambda s=script: server.ssh(s))
                pipeline_server = min(pipeline_server, seconds)
                by_hand = (f"cd {client_dir} && RESTIC_PASSWORD_FILE=password RESTIC_CACHE_DIR=cache "
                           f"restic -r rclone:x -o rclone.program=./rclone-over-ssh restore {snapshot} "
                           f"--target {DATA_ROOT}/by-hand-restore-{turn}")
                seconds, _ = _timed("restore by hand", lambda c=by_hand: server.ssh(c))
                hand_server = min(hand_server, seconds)
            verify, _ = _timed("verify_delivery", lambda: on_backup_host(render_script(
                "verify_delivery", request, "bench-2", archive=package["archive"], sha256=package["sha256"])))
        finally:
            server.stop()
            sshd.terminate()
            sshd.wait(10)

    def row(what: str, seconds: float) -> str:
        return f"  {what:<58s} {seconds:7.1f} s  {mib / seconds:7.0f} MiB/s"

    print(f"sample: {mib} MiB in {files} files (random, incompressible), on the deposited server's own disk")
    print("backup, deposited server -> backup host")
    print(row("pipeline test_backup (restic push via SSH, append-only)", pipeline_backup))
    print(row("by hand: restic backup, same push path, fresh repository", hand_push))
    print(row("by hand: restic backup to the server's own disk", hand_local))
    print(f"  ratio pipeline / by hand (same path): {pipeline_backup / hand_push:.2f}; "
          f"/ local disk: {pipeline_backup / hand_local:.2f}")
    print("step 6, archive on the unit's drop (best of two, alternated)")
    print(row("pipeline restore_file (dump|zstd, sha256 + manifest, one pass)", pipeline_archive))
    print(row("by hand: restic dump --archive tar | zstd -T0 -1; sha256sum", hand_archive))
    print(row("by hand: the same, SHA-256 by openssl dgst", fast_hand_archive))
    print(f"  ratio pipeline / by hand: {pipeline_archive / hand_archive:.2f}; / with openssl: "
          f"{pipeline_archive / fast_hand_archive:.2f}   (verify_delivery: {verify:.1f} s)")
    print("step 6, onto the deposited server (best of two, alternated)")
    print(row("pipeline restore_to_server (restore + SHA-256 manifest)", pipeline_server))
    print(row("by hand: restic restore through the push path", hand_server))
    print(f"  ratio pipeline / by hand: {pipeline_server / hand_server:.2f}")
    if args.json:
        write_json(args.json, {
            "mib": mib, "files": files,
            "backup": {"pipeline_s": pipeline_backup, "by_hand_s": hand_push, "local_disk_s": hand_local},
            "archive": {"pipeline_s": pipeline_archive, "by_hand_s": hand_archive,
                        "by_hand_openssl_s": fast_hand_archive, "verify_s": verify},
            "restore_to_server": {"pipeline_s": pipeline_server, "by_hand_s": hand_server},
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
