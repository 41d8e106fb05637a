#!/usr/bin/env bash
# Quickstart: create a city in a temp dir and walk work through it with the
# real CLI (SQLite store, JSONL events). Needs `npm run build` first.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
gc() { node "$here/dist/cli/gc.js" "$@"; }
bd() { node "$here/dist/cli/bd.js" "$@"; }

city=$(mktemp -d)/quickstart
trap 'rm -rf "$(dirname "$city")"' EXIT
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
echo; echo "quickstart ok: $migrate is ready after $schema closed"
