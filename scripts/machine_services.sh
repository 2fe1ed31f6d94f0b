#!/usr/bin/env bash
# Starts the machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) when they are down.
# The distributed-mode tests and the project-database tests use them; `make test` and .ci/run call
# this before the suite. Each start command is the machine kind's own (its `env` notes).
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  for _ in $(seq 1 60); do listening "$1" && return 0; sleep 0.5; done
  echo "machine_services: $2 did not come up on 127.0.0.1:$1" >&2
  return 1
}

if ! listening 5432; then
  cluster=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$cluster" ] || { echo "machine_services: no PostgreSQL cluster is installed" >&2; exit 1; }
  echo "machine_services: starting PostgreSQL $cluster"
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
  wait_for 5432 PostgreSQL
fi

if ! listening 6379; then
  echo "machine_services: starting Redis"
  mkdir -p /var/log/redis /var/lib/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for 6379 Redis
fi
