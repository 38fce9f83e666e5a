#!/usr/bin/env python3
"""Trivial stdio MCP server (stdlib only) with one tool, `ping`.

    python3 mcp_ping_server.py [--env-dump FILE] [--calls FILE]

Speaks newline-delimited JSON-RPC 2.0 on stdin/stdout (the MCP stdio
transport).  `ping` takes an optional {"message": str} and answers
"pong: <message>".  --env-dump writes the server's environment as JSON at
start-up; --calls appends one JSON line per tools/call.

Use with Claude Code:
    --mcp-config '{"mcpServers":{"kt":{"command":"python3","args":["mcp_ping_server.py"]}}}'
    --allowedTools mcp__kt      (tool name seen by the model: mcp__kt__ping)
"""
import json
import os
import sys


def main():
    args = sys.argv[1:]
    opts = dict(zip(args[::2], args[1::2]))
    if "--env-dump" in opts:
        with open(opts["--env-dump"], "w") as f:
            json.dump(dict(os.environ), f, indent=1, sort_keys=True)
    calls = opts.get("--calls")

    def send(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        mid = msg.get("id")
        method = msg.get("method")
        if mid is None:  # notification
            continue
        if method == "initialize":
            pv = (msg.get("params") or {}).get("protocolVersion") or "2025-06-18"
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": pv,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "ping-server", "version": "1.0.0"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [{
                "name": "ping",
                "description": "Answers pong with the given message.",
                "inputSchema": {"type": "object",
                                "properties": {"message": {"type": "string"}}}}]}})
        elif method == "tools/call":
            p = msg.get("params") or {}
            if calls:
                with open(calls, "a") as f:
                    f.write(json.dumps(p) + "\n")
            if p.get("name") == "ping":
                m = (p.get("arguments") or {}).get("message", "")
                send({"jsonrpc": "2.0", "id": mid, "result": {
                    "content": [{"type": "text", "text": f"pong: {m}"}], "isError": False}})
            else:
                send({"jsonrpc": "2.0", "id": mid,
                      "error": {"code": -32602, "message": f"unknown tool {p.get('name')}"}})
        elif method == "ping":
            send({"jsonrpc": "2.0", "id": mid, "result": {}})
        elif method in ("resources/list", "prompts/list", "resources/templates/list"):
            key = {"resources/list": "resources", "prompts/list": "prompts",
                   "resources/templates/list": "resourceTemplates"}[method]
            send({"jsonrpc": "2.0", "id": mid, "result": {key: []}})
        else:
            send({"jsonrpc": "2.0", "id": mid,
                  "error": {"code": -32601, "message": f"method not found: {method}"}})


if __name__ == "__main__":
    main()
