"""Write the secrets of docker-compose.yaml: `./secrets/` and `./.env` (both git-ignored, mode 600).

    python3 scripts/compose_secrets.py            # once, before the first `docker compose up`
    python3 scripts/compose_secrets.py --force    # new secrets for a NEW deployment only (see below)

Made here (Python 3.11 standard library and `ssh-keygen`, nothing else):

- `secrets/sb87_ssh_host_key{,.pub}`: the demonstration backup host's ed25519 host key;
- `secrets/sb87_ssh_client_key{,.pub}`: Airflow's ed25519 login key for the backup host;
- `secrets/sb87_restic_password`: the restic repositories' password (the backup host's file, never Airflow's);
- `secrets/sb87_server_host_key{,.pub}`: the demonstration deposited servers' ed25519 host key;
- `secrets/servers.env`: one connection per server of the inventory (`ssh_conn_id`, login root with
  Airflow's key, the demo servers' host key pinned), and the folder `secrets/servers/` for the key
  files of real servers that get a key of their own (docs/production.md, "Deposited servers");
- `.env`: the Fernet key, the JWT secret, the API secret key, the PostgreSQL password, the service
  account's password, and the connections `sb87_backup_host` (the host key pinned *with its type*)
  and `smtp_default` (the demo's mail catcher; replace it for production).

An existing file is never overwritten without `--force`. `--force` on a running deployment locks
you out of what the old secrets protect: the PostgreSQL volume keeps the old password, connections
stored in the database stay encrypted with the old Fernet key and existing restic repositories
open only with the old password. Use it only together with `docker compose down -v` on a demo.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from email.utils import formataddr
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: compose secret files under ./secrets (docker-compose.yaml `secrets:`)
HOST_KEY = "sb87_ssh_host_key"
CLIENT_KEY = "sb87_ssh_client_key"
RESTIC_PASSWORD = "sb87_restic_password"  # noqa: S105 - a file name, not a password
SERVER_HOST_KEY = "sb87_server_host_key"
#: the deposited servers' connections (docker-compose.yaml `env_file`) and their own key files
SERVERS_ENV = "servers.env"
SERVER_KEYS = "servers"
INVENTORY = REPO_ROOT / "config" / "inventory.json"
#: where the worker sees the client key (compose mounts secret <name> at /run/secrets/<name>)
CLIENT_KEY_IN_CONTAINER = f"/run/secrets/{CLIENT_KEY}"
#: the uid of the `airflow` user of the apache/airflow image, used when this runs as root
IMAGE_AIRFLOW_UID = 50000
SENDER = formataddr(("ศูนย์เทคโนโลยีสารสนเทศ", "itc@doh.example.go.th"))


def write_private(path: Path, text: str, *, force: bool) -> None:
    """Write `text` to `path` with mode 600 from the first byte; an existing file only with `force`."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path.chmod(0o600)  # an existing file overwritten with --force keeps its old mode otherwise


def keygen(target: Path, comment: str, *, force: bool) -> str:
    """An ed25519 key pair at `target` and `target.pub` (both mode 600); returns `type base64` of the public key."""
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        sys.exit("ssh-keygen not found: install openssh-client")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        key = Path(tmp) / "key"
        subprocess.run(
            [ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
            check=True, capture_output=True,
        )
        private = key.read_text(encoding="ascii")
        public = key.with_suffix(".pub").read_text(encoding="ascii")
    write_private(target, private, force=force)
    write_private(target.with_name(target.name + ".pub"), public, force=force)
    kind, b64 = public.split()[:2]
    return f"{kind} {b64}"


def fernet_key() -> str:
    """What `cryptography.fernet.Fernet.generate_key()` returns: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def env_line(name: str, value: str) -> str:
    """`NAME='value'`: single quotes make compose take the value literally (no `$` interpolation)."""
    if "'" in value or "\n" in value:
        raise ValueError(f"{name}: a value for .env may not contain a single quote or a newline")
    return f"{name}='{value}'"


def connection(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


def build_env(*, host_key: str, backup_host: str, backup_port: int, backup_login: str, airflow_uid: int) -> str:
    values = {
        "AIRFLOW_UID": str(airflow_uid),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "SB87_DB_APP_PASSWORD": secrets.token_urlsafe(24),
        "AIRFLOW_FERNET_KEY": fernet_key(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(48),
        "SERVICE_ACCOUNT_PASSWORD": secrets.token_urlsafe(24),
        "AIRFLOW_CONN_SB87_BACKUP_HOST": connection({
            "conn_type": "ssh",
            "host": backup_host,
            "port": backup_port,
            "login": backup_login,
            "extra": {"key_file": CLIENT_KEY_IN_CONTAINER, "no_host_key_check": False, "host_key": host_key},
        }),
        # The demo's mail catcher (profile `demo`); for production point it at the real SMTP server.
        "AIRFLOW_CONN_SMTP_DEFAULT": connection({
            "conn_type": "smtp",
            "host": "mailcatcher",
            "port": 1025,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": SENDER, "timeout": 30,
                      "retry_limit": 3},
        }),
    }
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Written by scripts/compose_secrets.py on {stamp}. Secrets: mode 600, never commit, never share.",
        "# Every variable is explained in .env.example; optional ones may be added below.",
        *(env_line(k, v) for k, v in values.items()),
    ]
    return "\n".join(lines) + "\n"


def build_servers_env(inventory: Path, host_key: str) -> str:
    """A connection per inventory server: the demo's deposited-server services (named by host name),
    root's key login with Airflow's key, the demo servers' host key pinned with its type."""
    servers = json.loads(inventory.read_text(encoding="utf-8"))["servers"]
    lines = [
        "# Written by scripts/compose_secrets.py: one connection per deposited server (`ssh_conn_id` of",
        "# config/inventory.json). A real server: its address, login, host key (`ssh-keyscan -t ed25519 HOST`)",
        "# and key file (/opt/airflow/server-keys/<file> for a key of its own in ./secrets/servers/).",
    ]
    for server in servers:
        # Unquoted: podman's --env-file takes quotes literally; compose reads a bare JSON value as is.
        lines.append(f"AIRFLOW_CONN_{server['ssh_conn_id'].upper()}=" + connection({
            "conn_type": "ssh",
            "host": server["hostname"],
            "port": 22,
            "login": "root",
            "extra": {"key_file": CLIENT_KEY_IN_CONTAINER, "no_host_key_check": False, "host_key": host_key},
        }))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO_ROOT,
                        help="folder of docker-compose.yaml, where secrets/ and .env go (default: the repository)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing secrets (only for a new deployment: see the module doc)")
    parser.add_argument("--backup-host", default="backup-host",
                        help="host name of the backup host in the connection (default: the demo's service)")
    parser.add_argument("--backup-port", type=int, default=22)
    parser.add_argument("--backup-login", default="sb87")
    parser.add_argument("--inventory", type=Path, default=INVENTORY,
                        help="the deposited servers, one connection each in secrets/servers.env")
    parser.add_argument("--airflow-uid", type=int, default=None,
                        help="uid the Airflow containers run as (default: yours; 50000 when run as root)")
    args = parser.parse_args(argv)

    root: Path = args.dir.resolve()
    secrets_dir = root / "secrets"
    env_file = root / ".env"
    targets = [env_file, *(secrets_dir / n for n in (HOST_KEY, f"{HOST_KEY}.pub", CLIENT_KEY, f"{CLIENT_KEY}.pub",
                                                      RESTIC_PASSWORD, SERVER_HOST_KEY, f"{SERVER_HOST_KEY}.pub",
                                                      SERVERS_ENV))]
    existing = [p for p in targets if p.exists()]
    if existing and not args.force:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        print(f"refusing to overwrite {names}: they are in use (--force replaces them; read --help first)",
              file=sys.stderr)
        return 1

    uid = args.airflow_uid
    if uid is None:
        uid = os.getuid() or IMAGE_AIRFLOW_UID
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)

    host_key = keygen(secrets_dir / HOST_KEY, "sb87-backup-host", force=args.force)
    keygen(secrets_dir / CLIENT_KEY, "sb87-airflow", force=args.force)
    write_private(secrets_dir / RESTIC_PASSWORD, secrets.token_urlsafe(32) + "\n", force=args.force)
    server_host_key = keygen(secrets_dir / SERVER_HOST_KEY, "sb87-demo-server", force=args.force)
    write_private(secrets_dir / SERVERS_ENV, build_servers_env(args.inventory, server_host_key), force=args.force)
    (secrets_dir / SERVER_KEYS).mkdir(mode=0o700, exist_ok=True)
    write_private(env_file, build_env(host_key=host_key, backup_host=args.backup_host, backup_port=args.backup_port,
                                      backup_login=args.backup_login, airflow_uid=uid), force=args.force)
    # Compose bind-mounts secret files with their owner and mode: the worker (uid `uid`) must own its key.
    if os.getuid() == 0 and uid != 0:
        os.chown(secrets_dir / CLIENT_KEY, uid, 0)
        os.chown(secrets_dir / SERVER_KEYS, uid, 0)

    print(f"wrote {env_file} and {secrets_dir}/ (mode 600)")
    print(f"backup host key pinned in AIRFLOW_CONN_SB87_BACKUP_HOST: {host_key}")
    print("next: docker compose --profile demo up -d   (docs/production.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
