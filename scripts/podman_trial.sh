#!/bin/bash
# The podman trial (`make podman-trial`): docker-compose.yaml for real, under podman-compose, with
# every service on the host network (docker-compose.hostnet.yaml), carrying the sample request to
# its result e-mail. Not part of `make test`: it downloads Debian packages and PyPI wheels and takes
# a quarter of an hour or more. Needs root, Debian's podman, buildah, podman-compose, mmdebstrap
# and runc (apt-get install them), and `make setup` (the driver runs in .venv).
#
#   bash scripts/podman_trial.sh          # build what is missing, start, drive, report; leaves it running
#   bash scripts/podman_trial.sh down     # stop and remove the trial's containers and volumes
#
# The images: a Debian 12 root file system made with mmdebstrap is the base of stand-ins for
# apache/airflow (Airflow 3.3.2 from PyPI under constraints/airflow-3.3.2-py3.11.txt), postgres,
# redis and mailpit (docker/standin/README.md: no Docker Hub here); the project's Dockerfiles are
# built unchanged on them (`podman build --from`). Secrets: ./.env and ./secrets/ as
# scripts/compose_secrets.py writes them, with the trial's loopback ports; an existing .env that
# the trial did not write is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=${SB87_TRIAL_DIR:-/tmp/sb87-trial}
PROJECT=sb87
# podman-compose 1.5.0 from PyPI, in a venv of the trial's own: Debian 12's podman-compose 1.0.3 adds
# `--net <project>_default --network-alias <service>` to every container, network_mode or not, and
# podman refuses those with the host network ("cannot set multiple networks without bridge network
# mode"); 1.5.0 honours network_mode and profiles.
PODMAN_COMPOSE=${PODMAN_COMPOSE:-$WORK/podman-compose/bin/podman-compose}
COMPOSE=("$PODMAN_COMPOSE" -p "$PROJECT" --profile demo -f docker-compose.yaml -f docker-compose.hostnet.yaml)
MARK="# sb87 podman trial"
mkdir -p "$WORK"

# This machine's container sandbox: no CAP_SYS_RESOURCE (podman's default rlimits cannot be set) and
# a hybrid cgroup layout that crun refuses; runc accepts it.
cat > "$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=8192:8192", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$WORK/containers.conf

say() { printf '[podman-trial %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ "${1:-}" = down ]; then
  [ -x "$PODMAN_COMPOSE" ] && "${COMPOSE[@]}" down -v || true
  exit 0
fi

for tool in podman buildah mmdebstrap runc; do
  command -v "$tool" >/dev/null || { echo "podman-trial: $tool is missing (apt-get install podman buildah mmdebstrap runc)" >&2; exit 1; }
done
[ -x .venv/bin/python ] || { echo "podman-trial: run make setup first" >&2; exit 1; }
if [ ! -x "$PODMAN_COMPOSE" ]; then
  python3 -m venv "$WORK/podman-compose"
  "$WORK/podman-compose/bin/pip" install -q podman-compose==1.5.0
fi

# Builds on the host network; the machine's CA bundle is lent to the build (an intercepting proxy
# may sign PyPI's certificate) and pip is told to use it.
build() {
  local log=$WORK/build-$1.log; shift
  local started=$SECONDS
  podman build --network host -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$@" > "$log" 2>&1 \
    || { tail -n 30 "$log" >&2; echo "podman-trial: build failed, log $log" >&2; exit 1; }
  echo $(( SECONDS - started ))
}
have() { podman image exists "$1"; }
timings=()

if ! have localhost/sb87-standin-debian:bookworm; then
  say "mmdebstrap: Debian 12 root file system"
  started=$SECONDS
  mmdebstrap --variant=minbase --include=ca-certificates,curl,python3,python3-venv,python3-dev,tini,procps,bash \
    bookworm "$WORK/rootfs.tar" > "$WORK/mmdebstrap.log" 2>&1
  podman import "$WORK/rootfs.tar" localhost/sb87-standin-debian:bookworm >/dev/null
  timings+=("rootfs $(( SECONDS - started ))s")
fi
for spec in airflow:3.3.2-python3.11 postgres:15 redis:7 mailcatcher:1; do
  name=${spec%%:*}
  if ! have "localhost/sb87-standin-$spec"; then
    say "stand-in $spec"
    timings+=("standin-$name $(build "standin-$name" -f "docker/standin/$name.Containerfile" -t "localhost/sb87-standin-$spec" .)s")
  fi
done
say "project images on the stand-ins"
timings+=("sb87-airflow $(build airflow --from localhost/sb87-standin-airflow:3.3.2-python3.11 -f docker/airflow/Dockerfile -t localhost/sb87-airflow:3.3.2 .)s")
timings+=("sb87-backup-host $(build backup-host --from localhost/sb87-standin-debian:bookworm -f docker/backup-host/Dockerfile -t localhost/sb87-backup-host:bookworm .)s")
timings+=("sb87-deposited-server $(build deposited-server --from localhost/sb87-standin-debian:bookworm -f docker/deposited-server/Dockerfile -t localhost/sb87-deposited-server:bookworm .)s")
say "build times: ${timings[*]}"

if [ -e .env ] && ! head -n 1 .env | grep -qF "$MARK"; then
  echo "podman-trial: ./.env exists and was not written by the trial: move it away first" >&2
  exit 1
fi
if [ ! -e .env ]; then
  say "secrets (scripts/compose_secrets.py, the trial's loopback ports)"
  .venv/bin/python scripts/compose_secrets.py --force --backup-port 10022 >/dev/null
  sed -i -e 's/"host":"mailcatcher","port":1025/"host":"mailcatcher","port":11025/' .env
  sed -i -e 's/"port":22,/"port":10022,/' secrets/servers.env
  sed -i "1i $MARK (scripts/podman_trial.sh): remove with \`bash scripts/podman_trial.sh down\` and rm -r .env secrets" .env
fi

say "starting: databases, backup host, deposited servers, mail catcher"
up_started=$SECONDS
"${COMPOSE[@]}" up -d --no-build postgres redis backup-host fileserver01 hr-db-01 mailcatcher > "$WORK/up-1.log" 2>&1 \
  || { tail -n 30 "$WORK/up-1.log" >&2; exit 1; }
for _ in $(seq 60); do
  podman exec "${PROJECT}_postgres_1" pg_isready -q -h 127.0.0.1 -p 15432 2>/dev/null && break
  sleep 2
done
say "airflow-init"
"${COMPOSE[@]}" up -d --no-build airflow-init > "$WORK/up-2.log" 2>&1 || { tail -n 30 "$WORK/up-2.log" >&2; exit 1; }
code=$(podman wait "${PROJECT}_airflow-init_1")
if [ "$code" != 0 ]; then
  podman logs --tail 40 "${PROJECT}_airflow-init_1" >&2
  echo "podman-trial: airflow-init exited $code" >&2
  exit 1
fi
# --no-deps: airflow-init has run (podman 4.3 cannot check `service_completed_successfully`, and
# podman-compose would create it again, leaving the others' `--requires` pointing at nothing).
say "the Airflow services"
"${COMPOSE[@]}" up -d --no-build --no-deps airflow-apiserver airflow-scheduler airflow-dag-processor airflow-triggerer airflow-worker \
  > "$WORK/up-3.log" 2>&1 || { tail -n 30 "$WORK/up-3.log" >&2; exit 1; }

accounts=$(podman volume inspect -f '{{.Mountpoint}}' "${PROJECT}_sb87-accounts")
# the stand-in mail catcher's Maildir, in its container's own layer
maildir=$(podman inspect -f '{{.GraphDriver.Data.UpperDir}}' "${PROJECT}_mailcatcher_1")/var/mail/sb87
say "driving the sample request (stack started $(( SECONDS - up_started ))s ago)"
.venv/bin/python scripts/podman_trial_drive.py --passwords "$accounts/initial-passwords.json" --mail-dir "$maildir"
