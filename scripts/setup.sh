#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh machine (Python 3.11, apt, root):
# the system tools the embedded stack runs (sshd, restic, Thai fonts, poppler) and the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

# libicu-dev, pkg-config and g++ build PyICU (Thai line breaking in the memos); chromium drives the
# browser test (playwright never downloads a browser here). rclone serves the append-only repository,
# cron runs the deposited servers' schedules, zstd/zip/unzip pack and check the Restore File, and
# Debian's python3 is the hosts' own (the manifests' hashlib; ssh sessions don't see pyenv).
APT_PACKAGES=(openssh-server openssh-client python3 restic rclone cron zstd zip unzip fonts-tlwg-laksaman poppler-utils
              libicu-dev pkg-config g++ chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
.venv/bin/uv pip install -q -p .venv/bin/python -r requirements-dev.txt
# The project's own packages (sb87, stack), editable: imports resolve without any sys.path edit.
.venv/bin/uv pip install -q -p .venv/bin/python --no-deps -e .
# Byte-code compiled once here: where PYTHONDONTWRITEBYTECODE is set (as on this machine kind and its
# CI), every Airflow process would otherwise compile Airflow and its providers from source again
# (measured: importing the SSH operator and the SDK took 4.2 s, 1.9 s with the byte-code). Incremental.
.venv/bin/python -m compileall -q -j 0 "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
  >/dev/null || echo "setup: some files did not byte-compile (harmless: they are compiled when imported)"
echo "setup: ready ($(.venv/bin/airflow version 2>/dev/null || echo airflow?))"
