#!/bin/bash
# A demonstration deposited server's entrypoint (docker/deposited-server/Dockerfile): install the
# secrets, start cron (the pipeline's /etc/cron.d/sb87-<id>), run sshd in the foreground.
#
# Secrets (compose `secrets:`, written by scripts/compose_secrets.py), read from /run/secrets:
#   sb87_server_host_key     the demo servers' ed25519 host key (pinned in their Airflow connections)
#   sb87_ssh_client_key_pub  Airflow's key, which logs in as root
# SSHD_LISTEN (default 0.0.0.0:22): where sshd listens; the host-network trial gives each server
# its inventory address (127.0.0.2, 127.0.0.3) and a port of its own.
set -euo pipefail

SECRETS=/run/secrets

for name in sb87_server_host_key sb87_ssh_client_key_pub; do
  [ -s "$SECRETS/$name" ] || { echo "deposited-server: secret $name is missing: run scripts/compose_secrets.py" >&2; exit 1; }
done
install -m 600 -o root -g root "$SECRETS/sb87_server_host_key" /etc/ssh/ssh_host_ed25519_key
bash /opt/sb87/scripts/provision/deposited-server.sh --no-packages --airflow-key "$SECRETS/sb87_ssh_client_key_pub" >/dev/null
/usr/sbin/sshd -t
cron
echo "deposited-server: sshd on ${SSHD_LISTEN:-0.0.0.0:22}, key login as root; $(restic version | awk '{print $1, $2}')" >&2
exec /usr/sbin/sshd -D -e -o "ListenAddress=${SSHD_LISTEN:-0.0.0.0:22}"
