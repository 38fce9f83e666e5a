"""What the Python benchmarks share: a connection to the daemon and the Messages API stand-in.

The benchmarks drive the real daemon over its socket (docs/PROTOCOL.md) and the real Claude Code
against tests/claude/stand_in.py; both are started the same way everywhere, so they live here.
"""

import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Sock:
    """One NDJSON connection to the daemon."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rwb")
        self.n = 0

    def call(self, op, args=None):
        self.n += 1
        self.f.write((json.dumps({"id": self.n, "op": op, "args": args or {}}) + "\n").encode())
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if r.get("id") == self.n:
                if not r.get("ok"):
                    raise RuntimeError(f"{op}: {r.get('error')}")
                return r.get("result")

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


def start_stand_in(base, scripts):
    """Starts the Messages API stand-in on a free loopback port with `scripts` (marker → turns).

    Returns (process, the environment Claude Code needs to talk to it).
    """
    script_file = os.path.join(base, "script.json")
    with open(script_file, "w") as f:
        json.dump({"scripts": scripts, "turns": []}, f)
    port_file = os.path.join(base, "port")
    api = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/claude/stand_in.py"), "--script", script_file,
                            "--log", os.path.join(base, "log.jsonl"), "--port-file", port_file],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    port = open(port_file).read().strip()
    return api, {
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": "sk-bench",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
    }
