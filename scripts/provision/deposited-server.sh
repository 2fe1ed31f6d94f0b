#!/bin/bash
# Provisions the SB-8-7 client prerequisites on a deposited server (Debian 12), as root. Run by
# docker/deposited-server/Dockerfile for the demonstration servers and by a server's administrator
# before its first request (docs/production.md §3): the same steps in both places.
#
#   bash scripts/provision/deposited-server.sh [--no-packages] [--airflow-key FILE] [--data-root DIR]...
#
#   --no-packages      skip apt-get (the packages are installed already)
#   --airflow-key FILE the public half of the key Airflow logs in with (the `key_file` of this server's
#                      connection, e.g. secrets/sb87_ssh_client_key.pub): appended to root's
#                      authorized_keys, key login only
#   --data-root DIR    a data folder of the inventory's `data_roots` (created if missing, mode 750)
#
# What the pipeline's scripts on a server (include/templates/backup/restic/_client.sh.j2,
# client_readiness, client_policy, run-backup, restore_to_server) expect:
#   - restic (pushes to the backup host through `ssh`: openssh-client, ssh-keygen makes the push key),
#     flock from util-linux (one backup at a time), a running cron daemon that reads /etc/cron.d (the
#     pipeline installs `/etc/cron.d/sb87-<id>`, run as root), pgrep (procps: readiness looks for cron),
#     python3 (the restore manifest's hashes; sha256sum is the fallback), sshd for Airflow's login;
#   - Airflow logs in as root with its key only: the client state (/var/lib/sb87-client/<id>, mode 700)
#     and the cron file are root's, and a backup must read every file of the data roots.
# Idempotent: a second run changes nothing.
set -euo pipefail

# Parsed by tests/test_compose.py (one line): the demo server's Dockerfile must install the same packages.
PACKAGES=(openssh-server openssh-client restic cron util-linux procps python3 ca-certificates)

CLIENT_DIR=/var/lib/sb87-client

install_packages=true
airflow_key=""
data_roots=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-packages) install_packages=false ;;
    --airflow-key) airflow_key=${2:?--airflow-key needs a file}; shift ;;
    --data-root) data_roots+=("${2:?--data-root needs a folder}"); shift ;;
    *) echo "usage: $0 [--no-packages] [--airflow-key FILE] [--data-root DIR]..." >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "deposited-server.sh: run as root" >&2; exit 1; }

if $install_packages; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi

install -d -o root -g root -m 700 "$CLIENT_DIR" /root/.ssh
install -d -o root -g root -m 755 /etc/cron.d /run/sshd
for dir in "${data_roots[@]+"${data_roots[@]}"}"; do
  install -d -m 750 "$dir"
done

if [ -n "$airflow_key" ]; then
  key=$(head -n 1 "$airflow_key")
  [[ $key =~ ^(ssh-|ecdsa-sha2-)[a-z0-9-]+\ [A-Za-z0-9+/=]+ ]] || { echo "$airflow_key is not an OpenSSH public key" >&2; exit 1; }
  touch /root/.ssh/authorized_keys
  grep -qxF -- "$key" /root/.ssh/authorized_keys || printf '%s\n' "$key" >> /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi

# Keys only for root (Debian's sshd_config includes sshd_config.d/*.conf first).
install -d -m 755 /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/sb87.conf <<'CONF'
# SB-8-7 deposited server (scripts/provision/deposited-server.sh): Airflow logs in as root with its key.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
CONF
chmod 644 /etc/ssh/sshd_config.d/sb87.conf

# Cron in a container: pam_loginuid cannot write the audit login uid there and would refuse the jobs.
if [ -f /.dockerenv ] || [ -f /run/.containerenv ] || [ "${SB87_IN_CONTAINER:-}" = 1 ]; then
  sed -i -E 's/^(session[[:space:]]+required[[:space:]]+pam_loginuid\.so)/# \1/' /etc/pam.d/cron
fi
echo "deposited-server.sh: ready (client state $CLIENT_DIR, cron /etc/cron.d)"
