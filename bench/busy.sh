#!/usr/bin/env bash
# Run pytest beside one CPU-burning process, to show the suite does not depend on the machine's
# speed (issue: a red CI that is the machine's fault teaches everyone to ignore red).
#
#   bench/busy.sh                               # the whole suite, as the README runs it, beside a burner
#   bench/busy.sh -m integration                # any pytest arguments
#   BUSY_WORKERS=0 bench/busy.sh        # one process, no xdist workers
#   BUSY_RUNS=3 bench/busy.sh -m "integration or experiments"   # three runs in a row
#
# The burner is one process spinning on one core, bounded in time (BUSY_MAX_S, default 5400 s)
# and killed when pytest ends, whatever the outcome.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${BUSY_RUNS:-1}
max_s=${BUSY_MAX_S:-5400}
.venv/bin/python - "$max_s" <<'PY' &
import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    sum(i * i for i in range(10_000))
PY
burner=$!
trap 'kill $burner 2>/dev/null' EXIT INT TERM
rc=0
for i in $(seq 1 "$runs"); do
  echo "busy: run $i of $runs beside a CPU burner (pid $burner)"
  .venv/bin/pytest -n "${BUSY_WORKERS:-2}" "$@" </dev/null || { rc=$?; echo "busy: run $i failed (exit $rc)"; break; }
done
exit "$rc"
