"""What the backend scripts reported, read as values for the steps that follow.

A script prints `SB87_RESULT <json>` lines; `BackupScriptOperator` returns them parsed, as a list of
objects (its XCom), so nothing downstream reads a script's stdout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sb87.backup.backends import choose_snapshot, parse_results

Results = Sequence[Mapping[str, Any]]


def results_of(reported: Results | str | bytes | None, *actions: str) -> list[dict[str, Any]]:
    """The results of `actions` among what was reported (a script's stdout is parsed first)."""
    if isinstance(reported, str | bytes):
        reported = parse_results(reported)
    return [dict(r) for r in reported or () if r.get("action") in actions]


def _one(reported: Results | str | None, action: str) -> dict[str, Any]:
    found = results_of(reported, action)
    if len(found) != 1:
        raise RuntimeError(f"expected one {action} result from the backup host, got {len(found)}")
    return found[0]


def chosen_snapshot(listing: Results, request: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot to restore from: the newest at or before the request's `as_of`."""
    return choose_snapshot(_one(listing, "list_snapshots")["snapshots"], request["restore"]["as_of"])


def server_outcomes(request: Mapping[str, Any], backup_results: Results | None,
                    restore_results: Results | None) -> list[dict[str, Any]]:
    """Per server: what step 5 did, from the results of the backup and restore tests."""
    backups = {r["server"]: r for r in results_of(backup_results, "test_backup")}
    restores = {r["server"]: r for r in results_of(restore_results, "test_restore")}
    outcomes = []
    for server in request.get("servers", []):
        host = server["hostname"]
        if host not in backups or host not in restores:
            raise RuntimeError(f"step 5 reported no backup/restore test result for {host}")
        summary = backups[host]["summary"]
        outcomes.append({
            "hostname": host,
            "address": server["address"],
            "paths": server["paths"],
            "snapshot": summary["snapshot_id"],
            "files": summary["total_files_processed"],
            "bytes": summary["total_bytes_processed"],
            "sample_file": restores[host]["file"],
            "sample_sha256": restores[host]["sha256"],
        })
    return outcomes


def restore_outcome(request: Mapping[str, Any], restored_results: Results | None,
                    verified_results: Results | None) -> dict[str, Any] | None:
    """What step 6 delivered and verified, for the result notice (None when no restore was asked):
    a folder on the unit's own server, or an archive on its SFTP drop, with the manifest's checksum."""
    if not request.get("restore"):
        return None
    packaged = results_of(restored_results, "restore_to_server", "restore_file")
    verified = results_of(verified_results, "verify_restore", "verify_delivery")
    if len(packaged) != 1 or len(verified) != 1 or not verified[0].get("verified"):
        raise RuntimeError("step 6 reported no verified delivery")
    package, check = packaged[0], verified[0]
    if check.get("sha256", package.get("sha256")) != package.get("sha256") or \
            check.get("manifest_sha256", package.get("manifest_sha256")) != package.get("manifest_sha256"):
        raise RuntimeError("the verified delivery is not the one that was packaged")
    return {**package, "paths": request["restore"]["paths"], "as_of": request["restore"]["as_of"]}


def delivered_file(restored_results: Results) -> dict[str, str]:
    """What a delivery's check verifies: an archive and its SHA-256, or a folder's manifest."""
    [package] = results_of(restored_results, "restore_to_server", "restore_file")
    if package["action"] == "restore_file":
        return {"archive": package["archive"], "sha256": package["sha256"]}
    return {"manifest_sha256": package["manifest_sha256"]}
