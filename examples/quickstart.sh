#!/usr/bin/env bash
# Quickstart: create a city in a temp dir and walk work through it with the
# real CLI (SQLite store, JSONL events). Needs `npm run build` first.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
gc() { node "$here/dist/cli/gc.js" "$@"; }
bd() { node "$here/dist/cli/bd.js" "$@"; }

city=$(mktemp -d)/quickstart
cleanup() { gc --city "$city" stop >/dev/null 2>&1 || true; rm -rf "$(dirname "$city")"; }
trap cleanup EXIT
gc init "$city" --name quickstart
cd "$city"

schema=$(gc bead create "Design the schema" -p 1 --json | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).id))')
migrate=$(bd create "Write migrations" --deps "$schema" --json | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).id))')
gc bead create "Update the docs" -p 3 >/dev/null

echo; echo "== ready work (the migration waits for the schema)"; gc bead ready
echo; echo "== worker-1 claims the next ready bead"; gc bead claim --actor worker-1
echo; echo "== worker-2 cannot take the same bead"; gc bead claim "$schema" --actor worker-2 || true
echo; echo "== worker-1 finishes"; gc bead close "$schema" -r "schema merged" --actor worker-1
echo; echo "== now the migration is ready"; gc bead ready
echo; echo "== the event log"; gc events
echo; echo "beads ok: $migrate is ready after $schema closed"

# Part two: a running city. A pool of up to 3 scripted worker agents (they
# use only the gc CLI) is started by the controller as work is routed to it,
# does the work, and is scaled back to zero.
# Sessions as plain subprocesses (tmux is the default when installed).
export GC_SESSION=subprocess
cat >> city.toml <<TOML

[[agent]]
name = "worker"
start_command = "$here/examples/agents/worker.sh"
max_active_sessions = 3
env = { GC_WORK_SECONDS = "0.5", GC_IDLE_SECONDS = "0.5" }
TOML
echo; echo "== start the city"; gc start
for i in 1 2 3 4 5 6; do gc bead create "Task $i" --routed-to worker >/dev/null; done
gc sling worker "$migrate"
echo "== 7 beads routed to the worker pool"
for _ in $(seq 1 120); do
  open=$(gc bead list --meta gc.routed_to=worker --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log((Array.isArray(j)?j:j.items).length)})')
  [ "$open" = 0 ] && break
  sleep 1
done
echo; echo "== status"; gc status
echo; echo "== what the controller did"; gc events --type 'session.*'
gc stop
echo; echo "quickstart ok: the pool did all routed work and the city stopped cleanly"
