#!/bin/bash
# Experiment helper used to produce FINDINGS.md.
# usage: run_claude.sh NAME 'SCRIPT_JSON' [claude args...]
#   prompt: $PROMPT (default "say hi") on stdin; $EXTRA_ENV is eval'd inside the fresh repo
#   before claude starts (extra exports, project files); $BASE overrides ANTHROPIC_BASE_URL.
# Leaves $OUT/NAME/{repo,home,log.jsonl,out.json,err.txt,debug.log,rc}.
HERE=$(cd "$(dirname "$0")" && pwd)
CLAUDE=${CLAUDE:-$HERE/../../node_modules/@anthropic-ai/claude-code-linux-x64/claude}
OUT=${OUT:-/tmp/kite-claude-exp}
NAME=$1; shift; SCRIPT=$1; shift
D=$OUT/$NAME; rm -rf "$D"; mkdir -p "$D/home" "$D/repo"
cd "$D/repo" && git init -q && git config user.email a@b && git config user.name t \
  && echo hello > README && git add -A && git commit -qm init
printf '%s\n' "$SCRIPT" > "$D/script.json"
python3 "$HERE/stand_in.py" --script "$D/script.json" --log "$D/log.jsonl" --port-file "$D/port" \
  > "$D/stand.out" 2> "$D/stand.err" &
SPID=$!
for _ in $(seq 50); do [ -f "$D/port" ] && break; sleep 0.1; done
export HOME=$D/home ANTHROPIC_BASE_URL=${BASE:-http://127.0.0.1:$(cat "$D/port")} \
  ANTHROPIC_API_KEY=sk-test CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
eval "$EXTRA_ENV"
cd "$D/repo"
echo "${PROMPT:-say hi}" | timeout 120 "$CLAUDE" -p --output-format json --debug-file "$D/debug.log" "$@" \
  > "$D/out.json" 2> "$D/err.txt"
echo $? > "$D/rc"
kill $SPID; wait $SPID 2>/dev/null
echo "rc=$(cat "$D/rc")"; cat "$D/out.json"; echo
