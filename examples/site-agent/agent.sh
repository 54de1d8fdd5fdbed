#!/bin/sh
# A helper process module (manifests/site-agent.yaml): any executable, no model.
# It logs a heartbeat; `edge-runtime logs agent` shows it on the device.
trap 'echo "site agent stopping"; exit 0' TERM INT
echo "site agent started on $(hostname)"
while true; do
    echo "site agent alive $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    sleep 60 &
    wait $!
done
