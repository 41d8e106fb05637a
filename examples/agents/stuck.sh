#!/bin/sh
# A stuck agent: claims the first work routed to it and never finishes;
# ignores interrupts and hangups, like an agent wedged in a tool call. Only
# SIGKILL ends it.
trap '' INT TERM HUP
until gc bead claim --routed-to "$GC_AGENT" 2>/dev/null | grep -q '^claimed '; do
  sleep "${GC_IDLE_SECONDS:-1}"
done
echo "stuck"
while :; do sleep 1; done
