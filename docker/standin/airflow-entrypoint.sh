#!/bin/bash
# STAND-IN of the official image's entrypoint, the part docker-compose.yaml relies on: `bash`/`python`
# run as given, anything else is an `airflow` subcommand (`api-server`, `celery worker`, ...).
set -euo pipefail
case "${1:-bash}" in
  bash|sh|python|python3) exec "$@" ;;
  *) exec airflow "$@" ;;
esac
