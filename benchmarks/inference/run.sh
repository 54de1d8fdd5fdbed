#!/usr/bin/env bash
# Benchmarks the iris score.py three ways on this machine and prints a Markdown
# table of p50/p99 latency and throughput at concurrency 1 and 8:
#   1. in-process: a Python loop calling run() (the floor);
#   2. the runtime: POST /v1/modules/iris/score (ScoringHost + LocalAPIServer, release build);
#   3. runtime-collect: the same with every request recorded (inputs and outputs) through
#      the daemon's InferenceRecorder into a real TelemetryBuffer (sampleRate 1);
#   4. runtime-shadow: the runtime with the same score.py also running as the module's
#      shadow (its own workers, nice 19 as the daemon runs them; FLEET_BENCHMARK_SHADOW_NICE
#      overrides) and every request mirrored to it (sampleRate 1);
#      runtime-shadow-unstarted: the same with the shadow never started, so each request
#      is only sampled and counted skipped (the cost of the decision on the live path);
#   5. azmlinfsrv (PyPI azureml-inference-server-http) serving the same score.py;
#   6. nocode: the same iris.onnx as a no-code module (kind onnx: onnxruntime in the
#      scoring host, no score.py), POST /v1/modules/iris/score with the same body;
#      nocode-v2: the same module over the Open Inference Protocol,
#      POST /v2/models/iris/infer with the same 3 rows as a V2 request.
# WAYS="runtime runtime-shadow" picks a subset.
# Needs: wrk, and a Python (FLEET_PYTHON, default .venv/bin/python) with
# numpy onnxruntime scikit-learn skl2onnx azureml-inference-server-http.
# FLEET_SCRATCH_PATH (e.g. .build-release) is the build folder to use; with
# FLEET_SKIP_BUILD=1 the release test build there is not refreshed first.
# Usage: [WAYS="…"] benchmarks/inference/run.sh [seconds-per-run] [workers]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/benchmarks/inference"
seconds="${1:-10}"
workers="${2:-2}"
ways="${WAYS:-inprocess runtime runtime-collect runtime-shadow azmlinfsrv nocode nocode-v2}"
scratch=(${FLEET_SCRATCH_PATH:+--scratch-path "$FLEET_SCRATCH_PATH"})
wants() { [[ " $ways " == *" $1 "* ]]; }
python="${FLEET_PYTHON:-$root/.venv/bin/python}"
command -v wrk >/dev/null || { echo "run.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  rm -f "$work/port"
  if [ -n "$server_pid" ]; then kill -TERM -- "-$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

module="$work/iris"
mkdir -p "$module/model"
cp "$root/examples/iris/score.py" "$module/"
"$python" "$root/examples/iris/train.py" --out "$module/model/iris.onnx" >/dev/null
request="$root/examples/iris/sample-request.json"
export FLEET_BENCHMARK_REQUEST="$request"
v2request="$work/v2-request.json"
"$python" -c 'import json, sys; rows = json.load(open(sys.argv[1]))["data"]
print(json.dumps({"inputs": [{"name": "X", "shape": [len(rows), 4], "datatype": "FP32", "data": sum(rows, [])}]}))' \
  "$request" >"$v2request"

# wrk at concurrency $1 against URL $2 -> "p50_us p99_us rps"
drive() {
  local threads=$(( $1 < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$1" -d2s -s "$here/post.lua" "$2" >/dev/null
  wrk -t"$threads" -c"$1" -d"${seconds}s" --latency -s "$here/post.lua" "$2" | awk '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1000000 }
    $1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) }
    $1 == "Requests/sec:" { rps = $2 } / Non-2xx/ { bad = $NF }
    END { if (bad) print "run.sh: " bad " non-2xx responses" > "/dev/stderr"; printf "%d %d %d\n", p50, p99, rps }'
}

declare -A results
if wants inprocess; then
  for c in 1 8; do results["inprocess,$c"]="$("$python" "$here/inprocess.py" "$module" "$request" "$c" "$seconds")"; done
fi

# The runtime, built in release mode; the benchmark server is a gated test.
# serve_runtime WAY [telemetry-folder] [shadow-sample-rate]; FLEET_BENCHMARK_KIND=onnx serves
# the model as a no-code module, ROUTE (default /v1/modules/iris/score) is what wrk posts to.
serve_runtime() {
  env FLEET_BENCHMARK_MODULE="$module" FLEET_BENCHMARK_PORT_FILE="$work/port" FLEET_BENCHMARK_WORKERS="$workers" \
    ${2:+FLEET_BENCHMARK_COLLECT="$2"} ${3:+FLEET_BENCHMARK_SHADOW="$3"} FLEET_PYTHON="$python" \
    setsid bash -c "cd '$root' && exec swift test -c release ${scratch[*]} --skip-build --filter InferenceBenchmarkServer" \
    >"$work/$1.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 1200); do [ -s "$work/port" ] && break; sleep 0.25; done
  [ -s "$work/port" ] || { echo "run.sh: the benchmark server did not start:" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
  local port; port="$(cat "$work/port")"
  for c in 1 8; do results["$1,$c"]="$(drive "$c" "http://127.0.0.1:$port${ROUTE:-/v1/modules/iris/score}")"; done
  rm -f "$work/port"; wait "$server_pid" || true; server_pid=""
}
if [ "${FLEET_SKIP_BUILD:-}" != 1 ] && { wants runtime || wants runtime-collect || wants runtime-shadow || wants runtime-shadow-unstarted || wants nocode || wants nocode-v2; }; then
  (cd "$root" && swift build -c release "${scratch[@]}" --build-tests -Xswiftc -enable-testing >/dev/null)
fi
wants runtime && serve_runtime runtime
if wants runtime-collect; then
  mkdir -p "$work/telemetry"
  serve_runtime runtime-collect "$work/telemetry"
  grep -h "inference records buffered" "$work/runtime-collect.log" >&2 || true
fi
if wants runtime-shadow; then
  serve_runtime runtime-shadow "" 1
  grep -h "benchmark: shadow" "$work/runtime-shadow.log" >&2 || true
fi
if wants runtime-shadow-unstarted; then
  FLEET_BENCHMARK_SHADOW_UNSTARTED=1 serve_runtime runtime-shadow-unstarted "" 1
  grep -h "benchmark: shadow" "$work/runtime-shadow-unstarted.log" >&2 || true
fi

wants nocode && FLEET_BENCHMARK_KIND=onnx serve_runtime nocode
wants nocode-v2 && FLEET_BENCHMARK_KIND=onnx ROUTE=/v2/models/iris/infer FLEET_BENCHMARK_REQUEST="$v2request" \
  serve_runtime nocode-v2

if wants azmlinfsrv; then
  # azmlinfsrv with as many workers as the runtime.
  azport="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  cd "$module"
  AZUREML_MODEL_DIR="$module/model" WORKER_COUNT="$workers" \
    setsid "$(dirname "$python")/azmlinfsrv" --entry_script score.py --port "$azport" >"$work/azml.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$azport/" && break; sleep 0.2; done
  for c in 1 8; do results["azmlinfsrv,$c"]="$(drive "$c" "http://127.0.0.1:$azport/score")"; done
fi

echo "| way | concurrency | p50 (µs) | p99 (µs) | requests/s |"
echo "|---|---|---|---|---|"
for way in $ways; do
  for c in 1 8; do
    read -r p50 p99 rps <<<"${results[$way,$c]}"
    echo "| $way | $c | $p50 | $p99 | $rps |"
  done
done
echo
echo "workers: $workers, seconds per run: $seconds, cores: $(nproc), $(date -u +%Y-%m-%dT%H:%MZ)"
