#!/usr/bin/env bash
# The drift summaries' cost per scoring request (DriftMonitor.observe(body:), as the
# daemon's tick pays it): {"data": rows} bodies of 4 and 32 features, 1 and 10 rows, 12 bins each.
# Prints a Markdown table and, last, the figures as JSON.
#
# FLEET_SCRATCH_PATH (e.g. .build-release) is the build folder to use; with
# FLEET_SKIP_BUILD=1 the release test build there is not refreshed first.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
scratch=(${FLEET_SCRATCH_PATH:+--scratch-path "$FLEET_SCRATCH_PATH"})
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if [ "${FLEET_SKIP_BUILD:-}" != 1 ]; then
  (cd "$root" && swift build -c release "${scratch[@]}" --build-tests -Xswiftc -enable-testing >/dev/null)
fi
(cd "$root" && FLEET_DRIFT_BENCHMARK_OUT="$out" swift test -c release "${scratch[@]}" --skip-build --filter DriftBenchmark >&2)
python3 - "$out" <<'PY'
import json, sys
figures = json.load(open(sys.argv[1]))
print("| features | rows/request | µs/request | µs/feature value |\n|---|---|---|---|")
for f in figures:
    print(f"| {f['features']} | {f['rowsPerRequest']} | {f['microsecondsPerRequest']:.2f} | {f['microsecondsPerFeatureValue']:.3f} |")
print(json.dumps(figures))
PY
