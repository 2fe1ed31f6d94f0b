"""The backup data path: from a deposited server, over the network, into its repository on the backup host.

Design (docs/data-path.md): restic runs on the deposited server and pushes to
`rclone serve restic --stdio --append-only <repository>` on the backup host, started by sshd as the
forced command of that server's own key (`command="…",restrict` in the push keys file). The server
can add snapshots and read its own, but cannot delete or rewrite them; retention and prune run on
the backup host only, with the master password.

Everything that lands in a file another program parses (a cron line, an authorized_keys line, a
generated shell script) is composed here in Python (the two scripts cron runs, a server's backup and
the backup host's retention, share shell functions with the actions and are templates:
`include/templates/backup/restic/_run_backup.sh.j2`, `_retention.sh.j2`) with POSIX single-quote quoting, never with
bash's `$'…'`, and a value that cannot be expressed in that place (a newline in a cron line) is
refused instead of being written. No secret passes through this module's return values or logs.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shlex
from collections.abc import Sequence
from typing import Any

#: An inventory identity for a deposited server: repositories, drops and cron files are named by it.
SERVER_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})")
PUBLIC_KEY = re.compile(r"(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ssh-rsa) ([A-Za-z0-9+/]+={0,3})")
CRON_FIELDS = re.compile(r"(?:[0-9*/,-]+ ){4}[0-9*/,-]+")
SCHEDULED_TAG = "sb87-scheduled"


class DataPathError(ValueError):
    """A value that cannot be placed safely where it would land (refused, never written)."""


def q(value: Any) -> str:
    """POSIX shell quoting (single quotes; `'` as `'"'"'`): what /bin/sh, dash and bash all read alike."""
    return shlex.quote(str(value))


def one_line(value: str, what: str) -> str:
    """Refuse control characters where a value lands in a line-oriented file (cron, authorized_keys)."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise DataPathError(f"{what} {value!r} holds a control character or newline: it cannot go into a line")
    return value


def checked_id(server_id: Any) -> str:
    if not isinstance(server_id, str) or not SERVER_ID.fullmatch(server_id):
        raise DataPathError(f"server id {server_id!r} must match {SERVER_ID.pattern} (inventory `id`)")
    return server_id


def cron_command(argv: Sequence[str], log_file: str) -> str:
    """The command part of a cron entry: run by /bin/sh -c after cron turns unescaped `%` into newlines."""
    command = " ".join(q(one_line(a, "cron argument")) for a in argv) + f" >> {q(one_line(log_file, 'log file'))} 2>&1"
    # crontab(5): a `%` not escaped with a backslash ends the command; cron removes the backslash.
    return command.replace("%", "\\%")


def cron_file_text(fields: str, user: str, argv: Sequence[str], log_file: str, what: str) -> str:
    """A /etc/cron.d file (with a user column) for one schedule; SHELL is /bin/sh on purpose."""
    if not CRON_FIELDS.fullmatch(fields):
        raise DataPathError(f"cron schedule {fields!r} is not five numeric cron fields")
    if not re.fullmatch(r"[a-z_][a-z0-9_-]*", user):
        raise DataPathError(f"cron user {user!r} is not a plain login name")
    return (
        f"# SB-8-7 {what}: managed by the SB-8-7 pipeline, do not edit.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        'MAILTO=""\n'
        f"{fields} {user} {cron_command(argv, log_file)}\n"
    )


def cron_entry_command(cron_text: str) -> str:
    """The command part of a cron file's entry, as cron hands it to `/bin/sh -c` (for tests and checks)."""
    line = next(li for li in cron_text.splitlines() if li and not li.startswith("#") and "=" not in li.split()[0])
    command = line.split(None, 6)[6]
    # Undo crontab's `\%` escape, exactly as cron does before running the command.
    return command.replace("\\%", "%")


def push_wrapper_text(host: str, port: int, login: str, client_dir: str) -> str:
    """The program restic starts as `rclone` on the server: an SSH session whose forced command (on the
    backup host) is `rclone serve restic --stdio --append-only <this server's repository>`."""
    argv = ["ssh", "-i", f"{client_dir}/push_ed25519", "-p", str(int(port)),
            "-o", f"UserKnownHostsFile={client_dir}/known_hosts", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ServerAliveInterval=30", "-o", "LogLevel=ERROR",
            f"{login}@{host}"]
    # restic appends rclone's own arguments ("serve restic --stdio …"): ignored, the key's command decides.
    return "#!/bin/sh\n# SB-8-7 push path, written by the SB-8-7 pipeline (client_policy).\nexec " + " ".join(
        q(a) for a in argv) + "\n"


def push_key_line(public_key: str, repository: str, server_id: str) -> str:
    """The backup host's authorized_keys line for a server's push key: only its repository, append-only.

    Inside `command="…"` sshd un-escapes only `\\"`; the command itself is read by the login shell, so
    the repository is single-quoted for sh and then every `"` escaped for sshd.
    """
    match = PUBLIC_KEY.fullmatch(" ".join(public_key.split()[:2]))
    if not match:
        raise DataPathError("the push key is not an OpenSSH public key line")
    command = f"rclone --config /dev/null -q serve restic --stdio --append-only {q(one_line(repository, 'repository'))}"
    options = 'command="' + command.replace('"', '\\"') + '",restrict'
    return f"{options} {match.group(1)} {match.group(2)} sb87-push:{checked_id(server_id)}"


def backup_endpoint(conn: Any) -> dict[str, Any]:
    """Where a deposited server reaches the backup host, from the backup host's Airflow connection:
    `{backup_host, backup_port, backup_login, backup_host_key}`. Extras `push_host` / `push_port` override
    the address when the servers see the backup host under another name than Airflow does, and
    `push_login` names a dedicated account whose authorized_keys (SB87_PUSH_KEYS_FILE) holds only the
    servers' forced-command lines (recommended in production; the embedded stack uses one login)."""
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else dict(conn.get("extra") or {})
    host = extra.get("push_host") or conn.host
    port = int(extra.get("push_port") or conn.port or 22)
    host_key = extra.get("host_key")
    if not host_key or " " not in host_key:
        raise DataPathError("the backup host's connection must pin its host key with its type (extra host_key)")
    login = extra.get("push_login") or conn.login
    return {"backup_host": host, "backup_port": port, "backup_login": login, "backup_host_key": host_key}


def install_client_password(backup_conn_id: str, server_conn_id: str, source: str, target: str) -> None:
    """Copy a repository's client password from the backup host to a deposited server over SFTP.

    Each side through its own Airflow connection (host keys pinned there); the bytes go from one
    SFTP session to the other in memory, are never logged, and land with mode 0600 through a
    temporary name and a rename, so a retry never sees half a file.
    """
    # Imported here, as in sb87.backup.operator.run_script: paramiko costs 0.25 s of every DAG parse.
    from airflow.providers.ssh.hooks.ssh import SSHHook

    with SSHHook(ssh_conn_id=backup_conn_id).get_conn() as src_client, src_client.open_sftp() as src:
        with src.open(source, "rb") as fh:
            secret = fh.read()
    if not secret.strip():
        raise DataPathError(f"the client password file {source} on the backup host is empty")
    with SSHHook(ssh_conn_id=server_conn_id).get_conn() as dst_client, dst_client.open_sftp() as dst:
        parts = target.rsplit("/", 1)[0].split("/")
        for depth in range(2, len(parts) + 1):
            folder = "/".join(parts[:depth])
            try:
                dst.stat(folder)
            except FileNotFoundError:
                with contextlib.suppress(OSError):  # another request's copy made it in between
                    dst.mkdir(folder, mode=0o700)
                dst.stat(folder)
        # A name of this copy's own: two requests for one server copy at the same moment, and a shared
        # name let one rename the file away from under the other (seen with 100 requests at once).
        temporary = f"{target}.{secrets.token_hex(8)}.part"
        try:
            with dst.open(temporary, "wb") as fh:
                fh.chmod(0o600)
                fh.write(secret)
            dst.posix_rename(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):  # no copy of the secret left behind under a name nobody uses
                dst.remove(temporary)
            raise
    del secret
