#!/bin/sh
# A scripted worker agent: it behaves like a coding agent, through the gc CLI
# only. Loop: wind down if drained; otherwise claim the next ready bead routed
# to its agent, "work" on it (write a file in its work dir, take
# GC_WORK_SECONDS), close it, repeat. Idle when there is nothing to claim.
#
# Env (set by the controller): GC_AGENT, GC_SESSION_NAME, GC_CITY_ROOT.
# Optional: GC_WORK_SECONDS (default 1), GC_IDLE_SECONDS (default 1).
set -u
work_s=${GC_WORK_SECONDS:-1}
idle_s=${GC_IDLE_SECONDS:-1}
echo "worker $GC_SESSION_NAME ready"
while :; do
  if gc runtime drain-check >/dev/null 2>&1; then
    echo "draining: finishing up"
    gc runtime drain-ack >/dev/null
    exit 0
  fi
  out=$(gc bead claim --routed-to "$GC_AGENT" 2>&1) || { echo "claim failed: $out"; sleep "$idle_s"; continue; }
  id=$(printf '%s\n' "$out" | sed -n 's/^claimed \([^ ]*\) as .*/\1/p')
  if [ -z "$id" ]; then
    sleep "$idle_s"
    continue
  fi
  echo "working on $id"
  sleep "$work_s"
  printf '%s done by %s\n' "$id" "$GC_SESSION_NAME" >> "work-$GC_SESSION_NAME.txt"
  gc bead close "$id" --reason "done by $GC_SESSION_NAME" >/dev/null && echo "closed $id"
done
