#!/bin/bash
# Provisions an SB-8-7 backup host (Debian 12), as root. Run by docker/backup-host/Dockerfile for the
# demonstration backup host and by the IT Centre's administrator on the real one
# (docs/production.md §3): what the tests' stack exercises is what a deployment runs.
#
#   bash scripts/provision/backup-host.sh [--no-packages] [--airflow-key FILE]
#
#   --no-packages      skip apt-get (the packages are installed already, e.g. from a local mirror)
#   --airflow-key FILE the public half of Airflow's SSH key (secrets/sb87_ssh_client_key.pub): the one
#                      key that may log in as `sb87`, commands only (`restrict`)
#
# What the pipeline's scripts (include/templates/backup/restic/*.sh.j2) expect of the host:
#   - restic (repositories, retention), rclone (`rclone serve restic --stdio --append-only`, the push
#     path's server side), python3 (the Restore File's manifest), zstd and zip (Restore File archives),
#     flock from util-linux (one job per repository), cron (retention), OpenSSH's sshd;
#   - the login `sb87`, key authentication only, no password;
#   - /srv/sb87/{restic,restore-files,cron.d} owned by sb87 (SB87_REPO_ROOT, SB87_DROP_DIR, SB87_CRON_DIR);
#   - /etc/sb87 owned by sb87 (mode 700): the master password `restic-password` (written by the
#     administrator or the demo's entrypoint) and the push keys file `push_authorized_keys`, which the
#     pipeline rewrites through a temporary file and a rename (so `sb87` must own the folder) and
#     which sshd reads, besides Airflow's key, for the login `sb87` (SB87_PUSH_KEYS_FILE);
#   - root's `sync-cron` every minute: the policies' cron files that `sb87` writes to /srv/sb87/cron.d
#     are installed into /etc/cron.d as root's files, each entry run as `sb87`.
# Idempotent: a second run changes nothing.
set -euo pipefail

# Parsed by tests/test_compose.py (one line): the Dockerfile must install the same packages.
PACKAGES=(openssh-server restic rclone python3 cron util-linux zstd zip unzip ca-certificates)

LOGIN=sb87
DATA=/srv/sb87
ETC=/etc/sb87
AIRFLOW_KEYS=/etc/ssh/authorized_keys
SBIN=/usr/local/sbin/sb87-backup-host
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

install_packages=true
airflow_key=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-packages) install_packages=false ;;
    --airflow-key) airflow_key=${2:?--airflow-key needs a file}; shift ;;
    *) echo "usage: $0 [--no-packages] [--airflow-key FILE]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "backup-host.sh: run as root" >&2; exit 1; }

if $install_packages; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi

# The login of the SSH tasks. `*`, not the locked `!`: with `UsePAM no` sshd refuses locked accounts,
# and `*` matches no password either.
id -u "$LOGIN" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --user-group "$LOGIN"
usermod -p '*' "$LOGIN"

install -d -o "$LOGIN" -g "$LOGIN" -m 750 "$DATA" "$DATA/restic" "$DATA/restore-files" "$DATA/cron.d"
install -d -o "$LOGIN" -g "$LOGIN" -m 700 "$ETC"
[ -e "$ETC/push_authorized_keys" ] || install -m 600 -o "$LOGIN" -g "$LOGIN" /dev/null "$ETC/push_authorized_keys"
install -d -o root -g root -m 755 "$AIRFLOW_KEYS" /run/sshd

if [ -n "$airflow_key" ]; then
  key=$(head -n 1 "$airflow_key")
  [[ $key =~ ^(ssh-|ecdsa-sha2-)[a-z0-9-]+\ [A-Za-z0-9+/=]+ ]] || { echo "$airflow_key is not an OpenSSH public key" >&2; exit 1; }
  printf 'restrict %s\n' "$key" > "$AIRFLOW_KEYS/$LOGIN.new"
  chmod 644 "$AIRFLOW_KEYS/$LOGIN.new"
  mv -f "$AIRFLOW_KEYS/$LOGIN.new" "$AIRFLOW_KEYS/$LOGIN"
fi

# sshd (Debian's sshd_config includes sshd_config.d/*.conf first): for `sb87`, Airflow's key and the
# servers' push keys (each bound to its forced command by the pipeline); keys only.
install -d -m 755 /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/sb87.conf <<CONF
# SB-8-7 backup host (scripts/provision/backup-host.sh)
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
Match User $LOGIN
    AuthorizedKeysFile $AIRFLOW_KEYS/%u $ETC/push_authorized_keys
    AuthenticationMethods publickey
    AllowTcpForwarding no
    AllowAgentForwarding no
    X11Forwarding no
    PermitTunnel no
CONF
chmod 644 /etc/ssh/sshd_config.d/sb87.conf

# Cron in a container: pam_loginuid cannot write the audit login uid there and would refuse the jobs.
if [ -f /.dockerenv ] || [ -f /run/.containerenv ] || [ "${SB87_IN_CONTAINER:-}" = 1 ]; then
  sed -i -E 's/^(session[[:space:]]+required[[:space:]]+pam_loginuid\.so)/# \1/' /etc/pam.d/cron
fi

install -m 755 "$REPO/docker/backup-host/entrypoint.sh" "$SBIN"
# Named outside `sb87-retention-*`, the only names sync-cron manages (and removes).
printf '%s\n' '# SB-8-7: install the backup policies cron files from /srv/sb87/cron.d (scripts/provision/backup-host.sh)' \
  "* * * * * root $SBIN sync-cron" > /etc/cron.d/backup-host-sync
chmod 644 /etc/cron.d/backup-host-sync
echo "backup-host.sh: ready (login $LOGIN, $DATA, $ETC)"
