#!/usr/bin/env bash
# `make test`'s test run: two pytest processes side by side on the machine's two cores.
#   embedded: every end-to-end test on the embedded default (LocalExecutor, SimpleAuthManager) and the
#             browser test: one stack for all of them;
#   the rest: the distributed mode's tests (CeleryExecutor, FAB: one stack), the stack smoke tests and
#             every test that needs no stack.
# Each keeps its full output in a log that is printed when both are done; the exit status fails if
# either failed, and the last line adds their counts up.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
logs=$(mktemp -d)

SB87_TEST_MODES=local "$PY" -m pytest -m stack --ignore=tests/test_stack.py --durations=12 "$@" > "$logs/embedded.log" 2>&1 &
embedded=$!
SB87_TEST_MODES=celery "$PY" -m pytest --ignore=tests/test_browser.py --durations=12 "$@" > "$logs/rest.log" 2>&1 &
rest=$!
wait "$embedded"; embedded_rc=$?
wait "$rest"; rest_rc=$?

for part in embedded rest; do
  printf '\n===== %s =====\n' "$part"
  cat "$logs/$part.log"
done
count() { grep -hoE "[0-9]+ $1" "$logs"/*.log | tail -n 2 | awk '{s += $1} END {print s + 0}'; }
summary=$(tail -n 1 -q "$logs"/*.log | tr '\n' ' ')
printf '\nmake test: embedded exit %s, rest exit %s (%s)\n' "$embedded_rc" "$rest_rc" "$summary"
printf '%s passed, %s failed\n' "$(count passed)" "$(( $(count failed) + $(count error) ))"
rm -rf "$logs"
[ "$embedded_rc" -eq 0 ] && [ "$rest_rc" -eq 0 ]
