#!/bin/sh
# A one-shot agent: does the first piece of work routed to it, then exits.
set -u
out=$(gc bead claim --routed-to "$GC_AGENT" 2>&1)
id=$(printf '%s\n' "$out" | sed -n 's/^claimed \([^ ]*\) as .*/\1/p')
[ -n "$id" ] || { echo "nothing to do"; exit 0; }
sleep "${GC_WORK_SECONDS:-1}"
gc bead close "$id" --reason "done by $GC_SESSION_NAME" >/dev/null
echo "closed $id"
