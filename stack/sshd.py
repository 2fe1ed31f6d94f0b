"""The "backup host": an OpenSSH sshd on loopback with its own host key and one client key.

The SSH tasks connect with strict host-key checking (the host key is in the Airflow
connection), so the stack generates both keys itself and never relies on ~/.ssh.
"""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True, capture_output=True,
        )


class Sshd:
    """Files and command line for one sshd listening on 127.0.0.1:`port`, rooted in `root`."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.host_key = root / "ssh_host_ed25519_key"
        self.client_key = root / "client_ed25519"
        self.authorized_keys = root / "authorized_keys"
        self.config = root / "sshd_config"
        self.pid_file = root / "sshd.pid"
        self.login = getpass.getuser()

    def prepare(self) -> None:
        """Keys (once per home) and a config file (every start, the port may change)."""
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation dir sshd insists on
        _keygen(self.host_key, "sb87-stack-host")
        _keygen(self.client_key, "sb87-airflow")
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o600)
        self.config.write_text(
            "# written by stack/sshd.py\n"
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.pid_file}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
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
            "Subsystem sftp internal-sftp\n",
            encoding="utf-8",
        )
        subprocess.run([SSHD, "-t", "-f", str(self.config)], check=True, capture_output=True)

    def argv(self) -> list[str]:
        return [SSHD, "-D", "-e", "-f", str(self.config)]

    def host_key_line(self) -> str:
        """`ssh-ed25519 AAAA...`: the host key *with its type* (a bare base64 key is parsed as RSA)."""
        kind, b64 = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"{kind} {b64}"

    def connection_json(self) -> str:
        """JSON-form Airflow connection for AIRFLOW_CONN_SB87_BACKUP_HOST, strict host-key checking on."""
        return json.dumps({
            "conn_type": "ssh",
            "host": "127.0.0.1",
            "port": self.port,
            "login": self.login,
            "extra": {
                "key_file": str(self.client_key),
                "no_host_key_check": False,
                "host_key": self.host_key_line(),
            },
        })
