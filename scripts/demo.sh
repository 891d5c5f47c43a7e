#!/usr/bin/env bash
# The end-to-end demo: sample events → RabbitMQ → worker → embedded CRM → a table of what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

# Names of this run only (the broker may be shared), all deleted at the end: the demo's check-ins
# are weeks ahead, so their timers would otherwise wait in the delay tiers long after it ended.
demo="winback.demo.$$"
export WINBACK_LOCAL_CRM_PATH=.demo/crm.sqlite3
export WINBACK_EXCHANGE=$demo.events
export WINBACK_QUEUE=$demo.events
export WINBACK_PARKING_QUEUE=$demo.parked
export WINBACK_DEAD_LETTER_EXCHANGE=$demo.dlx
export WINBACK_RETRY_DELAYS='[1, 2]'
export WINBACK_RULES=config/rules.yaml
export WINBACK_LOG_FORMAT=json

teardown() { "$bin/python" scripts/demo-teardown.py || echo "could not delete the demo's queues ($demo.*)"; }
trap 'echo; echo "== 7. Cleaning up the broker"; teardown' EXIT

rm -rf .demo && mkdir -p .demo
echo "== 1. Publishing the sample events (config/samples/) with publisher confirms"
"$bin/winback" publish config/samples/0*.json
echo
echo "== 2. Running the worker until the queue is drained"
"$bin/winback" run --exit-when-idle 1.5 2> .demo/worker.log || { cat .demo/worker.log; exit 1; }
echo "   $(grep -c '"event_handled"' .demo/worker.log) events handled, $(grep -c '"event_parked"' .demo/worker.log || true) parked (JSON log: .demo/worker.log)"
echo
echo "== 3. What the worker wrote into the embedded CRM ($WINBACK_LOCAL_CRM_PATH)"
COLUMNS=${COLUMNS:-160} "$bin/winback" crm list
echo
echo "== 4. Northwind's owner acknowledges the first complaint within the SLA, the second one late"
"$bin/winback" crm complete-task 'ACC-1001#1:acknowledge-within-sla:CMP-77' --at 2026-11-03T10:12
"$bin/winback" crm complete-task 'ACC-1001#1:acknowledge-within-sla:CMP-81' --at 2026-11-05T17:05
echo
echo "== 5. One plan's timeline, newest first: each event, the rule, and what it wrote or did not"
"$bin/winback" plan show ACC-1001
echo
echo "== 6. Did it work? The method's figures (charts in .demo/report.html, one page to open or attach);"
echo "      --sync also rolls each plan's acknowledgements onto it, as the running worker does every 5 minutes"
"$bin/winback" report --sync --html .demo/report.html
