#!/bin/bash
# The demonstration backup host's entrypoint (docker/backup-host/Dockerfile).
#
#   serve      (default) install the secrets, start cron, run sshd in the foreground
#   sync-cron  (root's cron, every minute) install the backup policies' cron files
#
# SSHD_LISTEN (default 0.0.0.0:22): where sshd listens (the host-network trial: 127.0.0.1:10022).
#
# Secrets (compose `secrets:`, written by scripts/compose_secrets.py), read from /run/secrets:
#   sb87_ssh_host_key        this host's ed25519 key (its public half is pinned in the Airflow connection)
#   sb87_ssh_client_key_pub  the one key that may log in, as `sb87`
#   sb87_restic_password     the repositories' password -> /etc/sb87/restic-password (sb87, mode 400)
set -euo pipefail
# cron runs `sync-cron` with PATH=/usr/bin:/bin, where runuser (/usr/sbin) is not: every file was
# skipped without a word (found by the podman trial).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

SECRETS=/run/secrets
DATA=/srv/sb87
CRON_SRC=$DATA/cron.d
CRON_DST=/etc/cron.d
# A line a policy's cron file may carry: a comment, a blank line, the three settings the pipeline
# writes (sb87.backup.datapath.cron_file_text: SHELL=/bin/sh, a PATH of plain folders, MAILTO=""), or
# five numeric schedule fields, the user root or sb87 and a command. Anything else (@reboot, other
# variables, other users) is dropped, and every entry is installed to run as sb87: the login owns
# the repositories and the password, and root's cron must never run what sb87 wrote as root.
CRON_ENTRY='^(#.*|[[:space:]]*|SHELL=/bin/sh|PATH=[A-Za-z0-9/._:-]+|MAILTO=""|[0-9*,/-]+([[:space:]]+[0-9*,/-]+){4}[[:space:]]+(root|sb87)[[:space:]]+[^[:space:]].*)$'
AS_SB87='s|^([0-9*,/-]+([[:space:]]+[0-9*,/-]+){4}[[:space:]]+)root([[:space:]])|\1sb87\3|'

log() {
  # to the container's log (`docker compose logs backup-host`), also from cron jobs
  printf 'backup-host: %s\n' "$*" > /proc/1/fd/2 2>/dev/null || printf 'backup-host: %s\n' "$*" >&2
}

die() {
  log "$*"
  exit 1
}

need_secret() {
  [ -s "$SECRETS/$1" ] || die "secret $1 is missing or empty: run scripts/compose_secrets.py"
}

# The SSH tasks run as sb87 and may not write /etc/cron.d (cron only reads root's files there, and a
# file sb87 could write there would run anything as anyone). The pipeline writes its policy files to
# /srv/sb87/cron.d (SB87_CRON_DIR); this copies them here as root's files, keeping only entries that
# run as sb87, and removes the ones whose policy was removed. Files are read with sb87's rights.
sync_cron() {
  local f name tmp content
  shopt -s nullglob
  for f in "$CRON_SRC"/sb87-retention-*; do
    name=${f##*/}
    if [[ ! $name =~ ^sb87-retention-[a-z0-9-]+$ ]]; then
      log "cron file $name skipped: not a valid cron.d name"
      continue
    fi
    content=$(runuser -u sb87 -- cat -- "$f") || { log "cron file $name could not be read as sb87"; continue; }
    tmp=$(mktemp "$CRON_DST/.sync.XXXXXX")  # a name with a dot: cron ignores it
    printf '%s\n' "$content" | grep -E "$CRON_ENTRY" | sed -E "$AS_SB87" > "$tmp" || true
    if [ "$(grep -c . "$tmp")" != "$(printf '%s\n' "$content" | grep -c .)" ]; then
      log "cron file $name: dropped lines that are not a schedule, a comment or SHELL/PATH/MAILTO"
    fi
    if cmp -s "$tmp" "$CRON_DST/$name"; then
      rm -f -- "$tmp"
    else
      chmod 644 "$tmp"
      mv -f -- "$tmp" "$CRON_DST/$name"
      log "cron file $name installed"
    fi
  done
  for f in "$CRON_DST"/sb87-retention-*; do
    name=${f##*/}
    if [ ! -e "$CRON_SRC/$name" ]; then
      rm -f -- "$f"
      log "cron file $name removed"
    fi
  done
}

serve() {
  need_secret sb87_ssh_host_key
  need_secret sb87_ssh_client_key_pub
  need_secret sb87_restic_password

  install -m 600 -o root -g root "$SECRETS/sb87_ssh_host_key" /etc/ssh/ssh_host_ed25519_key
  local key
  key=$(head -n 1 "$SECRETS/sb87_ssh_client_key_pub")
  [[ $key =~ ^(ssh-|ecdsa-sha2-)[a-z0-9-]+\ [A-Za-z0-9+/=]+ ]] || die "sb87_ssh_client_key_pub is not an OpenSSH public key"
  # `restrict`: commands only; no forwarding, no pty, no agent
  printf 'restrict %s\n' "$key" > /etc/ssh/authorized_keys/sb87.new
  chmod 644 /etc/ssh/authorized_keys/sb87.new
  mv -f /etc/ssh/authorized_keys/sb87.new /etc/ssh/authorized_keys/sb87

  install -m 400 -o sb87 -g sb87 "$SECRETS/sb87_restic_password" /etc/sb87/restic-password

  # the data volume may be new (or restored from elsewhere): owner and modes again
  mkdir -p "$DATA/restic" "$DATA/restore-files" "$CRON_SRC"
  chown sb87:sb87 "$DATA" "$DATA/restic" "$DATA/restore-files" "$CRON_SRC"
  chmod 750 "$DATA" "$DATA/restic" "$DATA/restore-files" "$CRON_SRC"
  # /etc/sb87 is a volume too (the push keys survive a new container): sb87 must own it
  chown sb87:sb87 /etc/sb87
  chmod 700 /etc/sb87
  [ -e /etc/sb87/push_authorized_keys ] || install -m 600 -o sb87 -g sb87 /dev/null /etc/sb87/push_authorized_keys
  mkdir -p /run/sshd
  chmod 755 /run/sshd

  /usr/sbin/sshd -t
  sync_cron
  cron
  log "sshd on ${SSHD_LISTEN:-0.0.0.0:22}, key login as sb87 only; restic $(restic version | awk '{print $2}'), $(rclone version | head -n 1)"
  exec /usr/sbin/sshd -D -e -o "ListenAddress=${SSHD_LISTEN:-0.0.0.0:22}"
}

case "${1:-serve}" in
  serve) serve ;;
  sync-cron) sync_cron ;;
  *) exec "$@" ;;
esac
