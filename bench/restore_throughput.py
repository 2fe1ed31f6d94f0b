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
   followed by `sha256sum f`, and the same followed by `openssl dgst -sha256 f` (the pipeline hashes
   with OpenSSL's SHA-256), typed by hand on the backup host: both by-hand times of both turns are in
   `archive_baselines`, and the fairer baseline is the faster of the two;
3. step 6, onto the server: the pipeline's `restore_to_server` against `restic restore` by hand.

Every pipeline script is the one `render_script` returns, run over SSH with the host key pinned.
Prints seconds, MiB/s and the ratio pipeline / by hand (target ≤ 1.3).
The host set-up is bench/hosts.py's, shared with bench/drill_restore.py.
Usage: `python -m bench.restore_throughput [--mib 1024] [--json PATH]`.
Keys of `--json`: `mib`, `files`, `backup` {`pipeline_s`, `by_hand_s`, `local_disk_s`}, `archive`
{`pipeline_s`, `by_hand_s` (sha256sum, best of two), `by_hand_openssl_s` (best of two), `verify_s`},
`archive_baselines` {`sha256sum_s`, `openssl_dgst_s`: spreads (bench.common.spread) of both turns},
`restore_to_server` {`pipeline_s`, `by_hand_s`}.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bound, spread, write_json
from bench.hosts import data_path_hosts, policy_request, timed

DATA_ROOT = "/srv/sb87-bench"
SAMPLE = f"{DATA_ROOT}/ข้อมูล ทดสอบ"
SERVER_ID = "bench-pipeline"


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 data path throughput")
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="also write the figures to this file (for BENCHMARKS.md)")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    bound(args.timeout)
    with tempfile.TemporaryDirectory(prefix="sb87-throughput-") as tmp, \
            data_path_hosts(Path(tmp), SERVER_ID, DATA_ROOT) as hosts:
        from sb87.backup.backends import parse_results, render_script

        root, server, on_backup_host, endpoint = hosts.root, hosts.server, hosts.on_backup_host, hosts.endpoint
        password = hosts.master_password_file
        request = policy_request("ทล 0601/8001", SAMPLE, args.mib)
        files, mib = hosts.write_sample(SAMPLE, args.mib, per_file=128)
        # --- the policy, as step 5 creates it
        hosts.create_policy(request)

        # --- 1. backup
        pipeline_backup, _ = timed("test_backup", lambda: server.ssh(render_script(
            "test_backup", request, "bench", server=SERVER_ID, **endpoint)))
        # By hand through the same push path, into a fresh repository (no deduplication against the first).
        fresh = f"{root}/repos/bench-by-hand"
        subprocess.run(["restic", "init", "-q", "-r", fresh, "--password-file",  # the server's key opens it
                        hosts.client_password_file], check=True)
        # The by-hand push reuses the server's key, pointed at the fresh repository for the run.
        keys = hosts.backup.push_authorized_keys.read_text()
        hosts.backup.push_authorized_keys.write_text(keys.replace(hosts.repository, fresh))
        client_dir = hosts.client_dir
        hand_push, _ = timed("backup by hand (push path)", lambda: server.ssh(
            f"cd {client_dir} && RESTIC_PASSWORD_FILE=password RESTIC_CACHE_DIR=cache-hand "
            f"restic -r rclone:x -o rclone.program=./rclone-over-ssh backup -q '{SAMPLE}'"))
        hosts.backup.push_authorized_keys.write_text(keys)
        hand_local, _ = timed("backup by hand (server's own disk)", lambda: server.ssh(
            f"export RESTIC_PASSWORD_FILE={client_dir}/password; restic init -q -r {DATA_ROOT}/local-repo && "
            f"restic -r {DATA_ROOT}/local-repo backup -q --cache-dir {DATA_ROOT}/cache '{SAMPLE}'"))

        # --- 2. step 6 as an archive on the drop
        request["services"] = ["backup", "restore"]
        request["restore"] = {"hostname": "fileserver01", "paths": [SAMPLE], "as_of": datetime.now(UTC).isoformat()}
        [listing] = parse_results(on_backup_host(render_script("list_snapshots", request, "bench")).stdout)
        snapshot = listing["snapshots"][-1]["id"]
        repo = hosts.repository
        # Alternated, best of two each: the first run of anything warms the page cache and restic's
        # cache for the next, and a shared machine's load comes and goes.
        pipeline_archive = pipeline_server = hand_server = float("inf")
        sha256sum_runs: list[float] = []
        openssl_runs: list[float] = []
        dump = (f"export RESTIC_PASSWORD_FILE={password}; restic -r {repo} dump --archive tar {snapshot} "
                f"'{SAMPLE}' | zstd -T0 -1 -q -f -o {root}/by-hand.tar.zst")
        for turn in (1, 2):
            script = render_script("restore_file", request, f"bench-{turn}", snapshot=snapshot)
            seconds, out = timed("restore_file", lambda s=script: on_backup_host(s))
            pipeline_archive = min(pipeline_archive, seconds)
            package = parse_results(out)[0]
            # By hand, SHA-256 by coreutils, then by OpenSSL (the pipeline's hashlib is OpenSSL's): both
            # measured over the same path, the report takes the faster as the baseline.
            seconds, _ = timed("archive by hand (sha256sum)",
                               lambda: on_backup_host(f"{dump} && sha256sum {root}/by-hand.tar.zst"))
            sha256sum_runs.append(seconds)
            seconds, _ = timed("archive by hand (openssl)",
                               lambda: on_backup_host(f"{dump} && openssl dgst -sha256 -r {root}/by-hand.tar.zst"))
            openssl_runs.append(seconds)
            script = render_script("restore_to_server", request, f"bench-{turn}", server=SERVER_ID,
                                   snapshot=snapshot, **endpoint)
            seconds, _ = timed("restore_to_server", lambda s=script: server.ssh(s))
            pipeline_server = min(pipeline_server, seconds)
            by_hand = (f"cd {client_dir} && RESTIC_PASSWORD_FILE=password RESTIC_CACHE_DIR=cache "
                       f"restic -r rclone:x -o rclone.program=./rclone-over-ssh restore {snapshot} "
                       f"--target {DATA_ROOT}/by-hand-restore-{turn}")
            seconds, _ = timed("restore by hand", lambda c=by_hand: server.ssh(c))
            hand_server = min(hand_server, seconds)
        hand_archive, fast_hand_archive = min(sha256sum_runs), min(openssl_runs)
        verify, _ = timed("verify_delivery", lambda: on_backup_host(render_script(
            "verify_delivery", request, "bench-2", archive=package["archive"], sha256=package["sha256"])))

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
            "archive_baselines": {"sha256sum_s": spread(sha256sum_runs), "openssl_dgst_s": spread(openssl_runs)},
            "restore_to_server": {"pipeline_s": pipeline_server, "by_hand_s": hand_server},
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
