"""The floor: calls the iris score.py's run() directly, in one Python process.

    python inprocess.py MODULE_DIR REQUEST_FILE CONCURRENCY SECONDS

Prints one line: p50_us p99_us requests_per_second. Concurrency > 1 uses threads
(so the GIL serialises them, as it would in one Python worker).
"""

import os
import sys
import threading
import time


def main():
    module_dir, request_file, concurrency, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    os.environ["AZUREML_MODEL_DIR"] = os.path.join(module_dir, "model")
    sys.path.insert(0, module_dir)
    import score

    score.init()
    raw = open(request_file).read()
    for _ in range(200):
        score.run(raw)

    latencies = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop():
        mine = []
        while True:
            start = time.perf_counter()
            if start > deadline:
                break
            score.run(raw)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e6
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6
    print(f"{p50:.0f} {p99:.0f} {len(latencies) / elapsed:.0f}")


if __name__ == "__main__":
    main()
