#!/usr/bin/env bash
# `make test`'s test run: three pytest processes on the machine's two cores.
#   embedded-faults: the end-to-end tests that inject a fault (scheduler killed with decisions waiting,
#                    sshd killed mid-backup, SMTP outage) and the intake refusals, on the embedded default
#                    (LocalExecutor, SimpleAuthManager);
#   embedded:        the other end-to-end tests, acting officials, the board and the browser tests, on a
#                    second embedded stack;
#   the rest:        the distributed mode's tests (CeleryExecutor, FAB: one stack), the stack smoke tests
#                    and every test that needs no stack.
# An end-to-end test mostly waits for Airflow to start its next task, and the tests without a stack
# mostly wait for sshd, restic and cron, so processes side by side take about half the time of one
# running every test in turn. Each process keeps its full output in a log that is printed when all are
# done; the exit status fails if any failed, and the last line adds their counts up.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
logs=$(mktemp -d)
FAULTS="waiting_decisions_survive or sshd_killed or smtp_outage or hostile or schema_cannot"

# In CI (CI=true) two lanes run side by side: the two embedded processes one after the other in one
# lane, the rest in the other. Three side by side on a slower 2-core machine (AMD EPYC, 2026-11-26)
# strained the end-to-end tests' time bounds, and all three one after another took 37.5 min (CI of
# f8dc7f8), over the 25-minute budget.
part() {  # part NAME MODES PYTEST-ARGS...: one pytest process, its output in NAME.log, its status in NAME.rc
  local name=$1 modes=$2
  shift 2
  SB87_TEST_MODES=$modes "$PY" -m pytest --durations=12 "$@" > "$logs/$name.log" 2>&1
  echo "$?" > "$logs/$name.rc"
}
names=(embedded-faults embedded rest)
if [ "${CI:-}" = "true" ]; then
  { part embedded-faults local -m stack tests/test_end_to_end.py -k "$FAULTS" "$@"
    part embedded local -m stack tests/test_end_to_end.py tests/test_acting_stack.py tests/test_board_ui.py tests/test_browser.py -k "not ($FAULTS)" "$@"; } &
  part rest celery --ignore=tests/test_browser.py "$@" &
else
  part embedded-faults local -m stack tests/test_end_to_end.py -k "$FAULTS" "$@" &
  part embedded local -m stack tests/test_end_to_end.py tests/test_acting_stack.py tests/test_board_ui.py tests/test_browser.py -k "not ($FAULTS)" "$@" &
  part rest celery --ignore=tests/test_browser.py "$@" &
fi
wait

status=0
codes=()
summaries=""
for name in "${names[@]}"; do
  code=$(cat "$logs/$name.rc" 2>/dev/null || echo 1)
  codes+=("$name exit $code")
  [ "$code" -eq 0 ] || status=1
  printf '\n===== %s =====\n' "$name"
  cat "$logs/$name.log"
  summaries+="$(tail -n 1 "$logs/$name.log") "
done
count() { grep -oE "[0-9]+ $1" <<< "$summaries" | awk '{s += $1} END {print s + 0}'; }
printf '\nmake test: %s (%s)\n' "$(IFS=,; echo "${codes[*]}")" "$summaries"
printf '%s passed, %s failed\n' "$(count passed)" "$(( $(count failed) + $(count error) ))"
rm -rf "$logs"
exit "$status"
