#!/bin/sh
# A drain-aware long-running agent: polls the drain flag between steps and
# acknowledges it, so config changes and scale-downs never cut work short.
set -u
echo "drain-aware $GC_SESSION_NAME ready"
while :; do
  if gc runtime drain-check >/dev/null 2>&1; then
    echo "drain requested: saving state"
    gc runtime drain-ack >/dev/null
    exit 0
  fi
  sleep "${GC_IDLE_SECONDS:-1}"
done
