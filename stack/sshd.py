"""The "backup host": an OpenSSH sshd on loopback with its own host key and one client key.

The SSH tasks connect with strict host-key checking (the host key is in the Airflow
connection), so the stack generates both keys itself and never relies on ~/.ssh.

Besides the Airflow client key, sshd also reads `push_authorized_keys`: the pipeline writes one
line per deposited server there, each bound to a forced command (`rclone serve restic --stdio
--append-only <that server's repository>`, `restrict`), so a server's key opens its own repository
for appending and nothing else (docs/data-path.md).
"""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def keygen(path: Path, comment: str) -> None:
    """An ed25519 key pair at `path` (+ `.pub`), created once."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True, capture_output=True,
        )


_keygen = keygen  # the old private name, kept for callers


def host_key_line(public_key_file: Path) -> str:
    """`ssh-ed25519 AAAA...` from a `.pub` file: the key *with its type* (a bare key is parsed as RSA)."""
    kind, b64 = public_key_file.read_text().split()[:2]
    return f"{kind} {b64}"


def sshd_config(port: int, address: str, host_key: Path, pid_file: str, authorized_keys: str, writer: str) -> str:
    """An sshd_config for one of the machine's hosts: its own address, port and host key; key logins only."""
    return (
        f"# written by {writer}\n"
        f"Port {port}\n"
        f"ListenAddress {address}\n"
        f"HostKey {host_key}\n"
        f"PidFile {pid_file}\n"
        f"AuthorizedKeysFile {authorized_keys}\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "X11Forwarding no\n"
        "PrintMotd no\n"
        "MaxStartups 50:30:100\n"
        "MaxSessions 50\n"
        "Subsystem sftp internal-sftp\n"
        # A neutral shell for every session, like a server's: Debian's bash reads ~/.bashrc for an ssh
        # command unless SHLVL says it is nested, and this machine's root ~/.bashrc runs `pyenv init`.
        # An sshd killed mid-session (the fault tests) then left pyenv's rehash lock behind, and every
        # later ssh command waited 60 s for it: CI's SSH steps timed out one after another.
        "SetEnv SHLVL=1\n"
    )


def ssh_connection_json(address: str, port: int, login: str, client_key: Path, host_key: str) -> str:
    """A JSON-form Airflow SSH connection with strict host-key checking: the host key pinned with its type."""
    return json.dumps({
        "conn_type": "ssh",
        "host": address,
        "port": port,
        "login": login,
        "extra": {"key_file": str(client_key), "no_host_key_check": False, "host_key": host_key},
    })


class Sshd:
    """Files and command line for one sshd listening on `address`:`port`, rooted in `root`."""

    def __init__(self, root: Path, port: int, address: str = "127.0.0.1", drop_dir: Path | None = None,
                 drop_keys: Path | None = None) -> None:
        self.root = root
        self.port = port
        self.address = address
        # Restore Files for the units: members of the group `sb87-drop` log in with SFTP only, chrooted
        # in <drop_dir>/<their login> (login = the server's inventory id), read-only, with the keys in
        # drop_keys/<login>. The chroot path must be root-owned all the way up (not under /tmp), and
        # sshd reads a user's keys file *as that user*: drop_keys must be readable by the units.
        self.drop_dir = drop_dir
        self.drop_keys = drop_keys or root / "drop_keys"
        self.host_key = root / "ssh_host_ed25519_key"
        self.client_key = root / "client_ed25519"
        self.authorized_keys = root / "authorized_keys"
        # Written by the pipeline (authorize_push): forced-command keys of the deposited servers.
        self.push_authorized_keys = root / "push_authorized_keys"
        self.config = root / "sshd_config"
        self.pid_file = root / "sshd.pid"
        self.login = getpass.getuser()

    def config_text(self) -> str:
        return (
            sshd_config(self.port, self.address, self.host_key, str(self.pid_file),
                        f"{self.authorized_keys} {self.push_authorized_keys}", "stack/sshd.py")
            + (
                "Match Group sb87-drop\n"
                f"    ChrootDirectory {self.drop_dir}/%u\n"
                f"    AuthorizedKeysFile {self.drop_keys}/%u\n"
                "    ForceCommand internal-sftp -R\n"
                "    AllowTcpForwarding no\n"
                "    AllowAgentForwarding no\n"
                "    X11Forwarding no\n"
                "    PermitTTY no\n"
                if self.drop_dir else ""
            )
        )

    def prepare(self) -> None:
        """Keys (once per home) and a config file (every start, the port may change)."""
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation dir sshd insists on
        keygen(self.host_key, "sb87-stack-host")
        keygen(self.client_key, "sb87-airflow")
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o600)
        self.drop_keys.mkdir(parents=True, exist_ok=True)
        self.drop_keys.chmod(0o755)
        if not self.push_authorized_keys.exists():
            self.push_authorized_keys.touch(mode=0o600)
        self.config.write_text(self.config_text(), encoding="utf-8")
        subprocess.run([SSHD, "-t", "-f", str(self.config)], check=True, capture_output=True)

    def argv(self) -> list[str]:
        return [SSHD, "-D", "-e", "-f", str(self.config)]

    def host_key_line(self) -> str:
        """`ssh-ed25519 AAAA...`: the host key *with its type* (a bare base64 key is parsed as RSA)."""
        return host_key_line(self.host_key.with_suffix(".pub"))

    def known_hosts_line(self) -> str:
        """The host key as an OpenSSH known_hosts line for this address and port."""
        return f"[{self.address}]:{self.port} {self.host_key_line()}"

    def connection_json(self) -> str:
        """JSON-form Airflow connection for AIRFLOW_CONN_SB87_BACKUP_HOST, strict host-key checking on."""
        return ssh_connection_json(self.address, self.port, self.login, self.client_key, self.host_key_line())
