"""What the backend scripts reported (their `SB87_RESULT` lines), read for the steps that follow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sb87.backends import choose_snapshot, parse_results


def _one(output: Any, action: str) -> dict[str, Any]:
    found = [r for r in parse_results(output) if r.get("action") == action]
    if len(found) != 1:
        raise RuntimeError(f"expected one {action} result from the backup host, got {len(found)}")
    return found[0]


def readiness_report(output: str | bytes) -> dict[str, Any]:
    """The one `readiness` result of a readiness script's stdout."""
    return _one(output, "readiness")


def chosen_snapshot(list_output: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot to restore from: the newest at or before the request's `as_of`."""
    return choose_snapshot(_one(list_output, "list_snapshots")["snapshots"], request["restore"]["as_of"])


def server_outcomes(request: Mapping[str, Any], backup_output: Any, restore_output: Any) -> list[dict[str, Any]]:
    """Per server: what step 5 did, from the results of the backup and restore tests."""
    backups = {r["server"]: r for r in parse_results(backup_output) if r.get("action") == "test_backup"}
    restores = {r["server"]: r for r in parse_results(restore_output) if r.get("action") == "test_restore"}
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


def restore_outcome(request: Mapping[str, Any], package_output: Any, verify_output: Any) -> dict[str, Any] | None:
    """What step 6 delivered and verified, for the result notice (None when no restore was asked):
    a folder on the unit's own server, or an archive on its SFTP drop, with the manifest's checksum."""
    if not request.get("restore"):
        return None
    packaged = [r for r in parse_results(package_output) if r.get("action") in ("restore_to_server", "restore_file")]
    verified = [r for r in parse_results(verify_output) if r.get("action") in ("verify_restore", "verify_delivery")]
    if len(packaged) != 1 or len(verified) != 1 or not verified[0].get("verified"):
        raise RuntimeError("step 6 reported no verified delivery")
    package, check = packaged[0], verified[0]
    if check.get("sha256", package.get("sha256")) != package.get("sha256") or \
            check.get("manifest_sha256", package.get("manifest_sha256")) != package.get("manifest_sha256"):
        raise RuntimeError("the verified delivery is not the one that was packaged")
    return {**package, "paths": request["restore"]["paths"], "as_of": request["restore"]["as_of"]}


def delivered_file(package_output: Any) -> dict[str, str]:
    """What `verify` checks of what `package` delivered: an archive and its SHA-256, or a folder's manifest."""
    [package] = [r for r in parse_results(package_output) if r.get("action") in ("restore_to_server", "restore_file")]
    if package["action"] == "restore_file":
        return {"archive": package["archive"], "sha256": package["sha256"]}
    return {"manifest_sha256": package["manifest_sha256"]}
