#!/usr/bin/env python3
"""Probe hook used for the "Tool hooks" section of FINDINGS.md.

usage (as a hook command):  hook_probe.py EVENT
Appends {"argv_event", "t", "cwd", "stdin": <parsed JSON>, "env": {CLAUDE*, AI_AGENT*}}
to $HOOKDIR/hooks.jsonl, then answers from files in $HOOKDIR/out/ (the first one
found of EVENT.TOOL_NAME<sfx> and EVENT<sfx>):
  .sleep  seconds to sleep first   .json  text printed on stdout
  .err    text printed on stderr   .rc    exit code (default 0)
"""
import json, os, sys, time
ev = sys.argv[1]
d = os.environ.get("HOOKDIR", "/tmp/hk/default")
raw = sys.stdin.read()
try:
    data = json.loads(raw)
except ValueError:
    data = raw
env = {k: v for k, v in os.environ.items() if k.startswith(("CLAUDE", "AI_AGENT"))}
rec = {"argv_event": ev, "t": time.time(), "cwd": os.getcwd(), "stdin": data, "env": env}
o = os.path.join(d, "out", ev)
tool = data.get("tool_name") if isinstance(data, dict) else None


def rd(sfx):
    for p in ([f"{o}.{tool}{sfx}"] if tool else []) + [o + sfx]:
        if os.path.exists(p):
            return open(p).read()
    return None


sl = rd(".sleep")
with open(os.path.join(d, "hooks.jsonl"), "a") as f:
    f.write(json.dumps(rec) + "\n")
if sl:
    time.sleep(float(sl))
    with open(os.path.join(d, "hooks.jsonl"), "a") as f:
        f.write(json.dumps({"argv_event": ev, "slept_done": True}) + "\n")
out = rd(".json")
if out:
    sys.stdout.write(out)
err = rd(".err")
if err:
    sys.stderr.write(err)
sys.exit(int(rd(".rc") or 0))
