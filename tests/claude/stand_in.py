#!/usr/bin/env python3
"""Scripted stand-in for the Anthropic Messages API (stdlib only, Python 3.11).

Used to drive the real Claude Code binary (`claude -p ...`) in tests without
network access:

    python3 tests/claude/stand_in.py --script SCRIPT.json --log LOG.jsonl \
        [--port 0] [--port-file F] [--host 127.0.0.1] [--control-dir DIR]

It listens on 127.0.0.1 (port 0 = let the OS pick), prints the chosen port as
the first line of stdout, writes it to --port-file (atomically: temp file +
rename) once listening, and serves until killed (SIGTERM/SIGINT).

Point Claude Code at it with:

    ANTHROPIC_BASE_URL=http://127.0.0.1:PORT ANTHROPIC_API_KEY=anything \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 HOME=$(mktemp -d) claude -p ...

Endpoints
---------
* POST /v1/messages (query string ignored, e.g. ?beta=true): answered like the
  real API -- a JSON Message, or an SSE stream when the body has
  "stream": true (message_start, content_block_start, content_block_delta
  with text_delta / input_json_delta, content_block_stop, message_delta with
  stop_reason + usage, message_stop).  The response's "model" echoes the
  request's model.  Usage numbers are estimated from the request size
  (input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
  output_tokens) so Claude Code computes a nonzero total_cost_usd for models
  it knows the price of.
* POST /v1/messages/count_tokens: {"input_tokens": N}.
* Anything else (GET/HEAD /, other paths): 200 with a small JSON body.

Main vs side requests
---------------------
A *main* request is a /v1/messages request whose "tools" list is non-empty
(the agent loop).  Claude Code's side requests (session titles, summaries,
quota checks, ...) carry no tools: they get a short plain text answer
(script key "side_text", default "OK.") and never consume a turn.
Caveat: `claude --tools ""` sends its main requests with "tools": [] -- use
"main": "all" in the script for such runs.  (Observed with Claude Code
2.1.328 in -p mode: no side requests at all, only a HEAD /api/hello probe.)

Script format (JSON)
--------------------
    {
      "turns": [ TURN, ... ],                 # default script
      "scripts": { "MARKER": {"turns": [...]}, ... },   # optional routing
      "side_text": "OK.",                     # optional, answer to side requests
      "done_text": "done",                    # optional, answer once exhausted
      "main": "tools"                         # optional: "all" = every /v1/messages
    }                                         #   request is main (needed with --tools "")

Turns are consumed in order by main requests.  A TURN is one of:

    {"text": "..."}                              final answer, stop_reason end_turn
    {"tool_use": {"name": "Write", "input": {...}}, "text": "optional preamble"}
                                                 one tool call, stop_reason tool_use
    {"tool_uses": [{"name":..., "input":...}, ...], "text": "optional"}
                                                 several tool calls in one message
    {"error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"}}
                                                 HTTP error with the real body shape
                                                 {"type":"error","error":{"type","message"}}
                                                 (429 also gets a retry-after header,
                                                 "retry_after": N in the error overrides;
                                                 "headers": {...} adds more)

Optional keys on any turn:
    "match": "substr"   the turn is used only when the request's last user
                        message (text and tool_result content) contains substr;
                        otherwise the request gets the done_text answer and the
                        turn stays pending.
    "times": N          serve this turn N times before moving on (e.g. an error
                        that must survive retries).  Default 1.
    "delay": SECONDS    sleep before answering (after the log line is written).
    "hold": "NAME"      hold the answer until the test releases it: once the
                        request is logged (its log line has "held": "NAME"),
                        the stand-in creates the file CONTROL/NAME.waiting
                        (content: the request's seq), then polls every 10 ms
                        (sleeping, no busy CPU) until the file CONTROL/NAME
                        exists, then answers (after "delay", if any).
                        CONTROL is --control-dir (default: the directory of
                        --log).  The release file is not consumed and
                        NAME.waiting is not removed, so a released NAME stays
                        released (a later turn with the same NAME, or "times",
                        is answered at once).  Each request runs on its own
                        thread: a held request blocks nothing else, and
                        SIGTERM still stops the server (held connections
                        are dropped unanswered).
                        Test usage:  wait for CONTROL/NAME.waiting (or the log
                        line with "held"), inspect, then `touch CONTROL/NAME`.
    "stop_reason": "max_tokens"   override the stop reason.
    "usage": {...}      override (merge into) the reported usage.
A tool call may carry "id" to fix its tool_use id (default: generated toolu_...).

When a script is exhausted every further main request gets {"text": done_text}.

Routing: a main request whose *first* user message contains one of the keys of
"scripts" consumes from that script (first key found, in file order); other
main requests consume from the top-level "turns".  Several agents (each with a
marker in its prompt) can so share one stand-in.

Log
---
Every request is appended to --log as one JSON line, flushed immediately:
    {"seq", "time", "method", "path", "headers": {subset}, "body": <parsed JSON
     or raw text>, "kind": "main"|"side"|"count_tokens"|"other",
     "script": "<marker>"|"" (default script)|null, "turn": <index>|null,
     "status": <http status sent>, "answer": <short description>,
     "held": "NAME" (only for turns with "hold")}
"body" is always the full request body (all messages, system, tools), so a
test can search it, e.g. for hook context injected by Claude Code.
The line is written once the answer is decided, before any "delay" or
"hold" wait and before the response is sent, so "time" is (about) the
arrival time, and a held request is already visible in the log.
"turn" is the index in the script's "turns" that answered (null for side
requests, for done_text answers and for unmatched requests).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import string
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_B62 = string.ascii_letters + string.digits
LOGGED_HEADERS = (
    "user-agent", "x-app", "anthropic-version", "anthropic-beta",
    "anthropic-dangerous-direct-browser-access", "content-type",
    "x-claude-code-session-id", "x-stainless-retry-count", "x-stainless-timeout",
    "x-stainless-lang", "x-stainless-package-version",
)


def _rand_id(prefix: str, n: int = 24) -> str:
    return prefix + "".join(random.choice(_B62) for _ in range(n))


def _content_text(content) -> str:
    """Flatten a message content (string or block list) into text."""
    if isinstance(content, str):
        return content
    out = []
    if isinstance(content, list):
        for b in content:
            if not isinstance(b, dict):
                continue
            t = b.get("type")
            if t == "text":
                out.append(str(b.get("text", "")))
            elif t == "tool_result":
                out.append(_content_text(b.get("content", "")))
    return "\n".join(out)


def _user_messages(body: dict) -> list:
    msgs = body.get("messages") or []
    return [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]


def _estimate_tokens(body: dict) -> int:
    try:
        size = len(json.dumps([body.get("system"), body.get("messages"), body.get("tools")]))
    except (TypeError, ValueError):
        size = 4000
    return max(10, size // 4)


class Script:
    """Turn queues, shared by all request threads."""

    def __init__(self, data: dict):
        self.lock = threading.Lock()
        self.side_text = data.get("side_text", "OK.")
        self.done_text = data.get("done_text", "done")
        self.main_mode = data.get("main", "tools")  # "tools" | "all"
        self.queues: dict[str, list] = {"": list(data.get("turns") or [])}
        self.markers: list[str] = []
        for k, v in (data.get("scripts") or {}).items():
            self.markers.append(k)
            self.queues[k] = list((v or {}).get("turns") or [])
        self.pos = {k: 0 for k in self.queues}
        self.served = {k: 0 for k in self.queues}  # times the current turn was served

    def route(self, body: dict) -> str:
        users = _user_messages(body)
        first = _content_text(users[0].get("content")) if users else ""
        for m in self.markers:
            if m in first:
                return m
        return ""

    def take(self, key: str, body: dict):
        """Returns (turn_index or None, turn dict)."""
        with self.lock:
            q = self.queues[key]
            i = self.pos[key]
            if i >= len(q):
                return None, {"text": self.done_text}
            turn = q[i]
            if "match" in turn:
                users = _user_messages(body)
                last = _content_text(users[-1].get("content")) if users else ""
                if str(turn["match"]) not in last:
                    return None, {"text": self.done_text}
            self.served[key] += 1
            if self.served[key] >= int(turn.get("times", 1)):
                self.pos[key] = i + 1
                self.served[key] = 0
            return i, turn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stand-in/1"
    sys_version = ""

    # set on the class by main()
    script: Script = None  # type: ignore
    log_file = None
    control_dir = "."
    log_lock = threading.Lock()
    seq = 0

    def log_message(self, fmt, *args):  # quiet
        pass

    # ---- plumbing -------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                if not line:
                    break
                n = int(line.strip().split(b";")[0] or b"0", 16)
                if n == 0:
                    # trailer lines up to a blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(n))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _log(self, rec: dict) -> int:
        cls = type(self)
        with cls.log_lock:
            cls.seq += 1
            rec = {"seq": cls.seq, "time": time.time(), **rec}
            if cls.log_file is not None:
                cls.log_file.write(json.dumps(rec) + "\n")
                cls.log_file.flush()
            return cls.seq

    def _headers_subset(self) -> dict:
        h = {k: self.headers.get(k) for k in LOGGED_HEADERS if self.headers.get(k) is not None}
        h["has_x_api_key"] = self.headers.get("x-api-key") is not None
        h["has_authorization"] = self.headers.get("authorization") is not None
        return h

    def _send_json(self, status: int, obj, extra_headers: dict | None = None, head=False):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", _rand_id("req_01"))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if not head:
            self.wfile.write(data)
            self.wfile.flush()

    # ---- verbs ----------------------------------------------------------
    def do_GET(self):
        self._read_body()
        self._log({"method": "GET", "path": self.path, "headers": self._headers_subset(),
                   "body": None, "kind": "other", "script": None, "turn": None, "status": 200,
                   "answer": "ok"})
        self._send_json(200, {"ok": True, "stand_in": True})

    def do_HEAD(self):
        self._log({"method": "HEAD", "path": self.path, "headers": self._headers_subset(),
                   "body": None, "kind": "other", "script": None, "turn": None, "status": 200,
                   "answer": "ok"})
        self._send_json(200, {"ok": True}, head=True)

    def do_OPTIONS(self):
        self.do_GET()

    def do_POST(self):
        raw = self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = {"method": "POST", "path": self.path, "headers": self._headers_subset(), "body": body,
               "kind": "other", "script": None, "turn": None}
        if not isinstance(body, dict):
            body_d = {}
        else:
            body_d = body
        try:
            if path == "/v1/messages/count_tokens":
                rec["kind"] = "count_tokens"
                n = _estimate_tokens(body_d)
                rec.update(status=200, answer=f"input_tokens={n}")
                self._log(rec)
                self._send_json(200, {"input_tokens": n})
                return
            if path != "/v1/messages":
                rec.update(status=200, answer="ok")
                self._log(rec)
                self._send_json(200, {"ok": True, "stand_in": True})
                return
            tools = body_d.get("tools")
            if (isinstance(tools, list) and tools) or self.script.main_mode == "all":
                rec["kind"] = "main"
                key = self.script.route(body_d)
                rec["script"] = key
                idx, turn = self.script.take(key, body_d)
                rec["turn"] = idx
            else:
                rec["kind"] = "side"
                turn = {"text": self.script.side_text}
            self._answer(rec, body_d, turn)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # ---- answering --------------------------------------------------------
    def _wait(self, rec: dict, turn: dict):
        """Log the request, then apply the turn's "hold" and "delay"."""
        hold = turn.get("hold")
        if hold:
            rec["held"] = str(hold)
        seq = self._log(rec)
        if hold:
            base = os.path.join(type(self).control_dir, str(hold))
            os.makedirs(os.path.dirname(base) or ".", exist_ok=True)
            tmp = f"{base}.waiting.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as f:
                f.write(f"{seq}\n")
            os.replace(tmp, base + ".waiting")  # atomic: never seen empty
            while not os.path.exists(base):
                time.sleep(0.01)
        if turn.get("delay"):
            time.sleep(float(turn["delay"]))

    def _answer(self, rec: dict, body: dict, turn: dict):
        if "error" in turn:
            e = turn["error"] or {}
            status = int(e.get("status", 529))
            etype = e.get("type") or {
                400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
            }.get(status, "api_error")
            msg = e.get("message") or etype
            headers = dict(e.get("headers") or {})
            if status == 429 and "retry-after" not in {k.lower() for k in headers}:
                headers["retry-after"] = str(e.get("retry_after", 1))
            rec.update(status=status, answer=f"error {status} {etype}")
            self._wait(rec, turn)
            self._send_json(status, {"type": "error", "error": {"type": etype, "message": msg}},
                            headers)
            return

        model = body.get("model") or "claude-sonnet-4-5"
        blocks = []
        if turn.get("text") is not None:
            blocks.append({"type": "text", "text": str(turn["text"])})
        calls = list(turn.get("tool_uses") or [])
        if turn.get("tool_use"):
            calls.insert(0, turn["tool_use"])
        for c in calls:
            blocks.append({"type": "tool_use", "id": c.get("id") or _rand_id("toolu_01"),
                           "name": c["name"], "input": c.get("input") or {}})
        if not blocks:
            blocks.append({"type": "text", "text": ""})
        stop = turn.get("stop_reason") or ("tool_use" if calls else "end_turn")

        total_in = _estimate_tokens(body)
        n_msgs = len(body.get("messages") or [])
        input_tokens = min(total_in, 3 + (20 * n_msgs) % 200)
        rest = total_in - input_tokens
        if n_msgs <= 1:
            cache_create, cache_read = rest, 0
        else:
            cache_read = int(rest * 0.9)
            cache_create = rest - cache_read
        out_tokens = max(1, len(json.dumps(blocks)) // 4)
        usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_create,
            "cache_read_input_tokens": cache_read,
            "output_tokens": out_tokens,
            "service_tier": "standard",
        }
        usage.update(turn.get("usage") or {})
        msg_id = _rand_id("msg_01")
        rec.update(status=200, answer=(f"{stop}: " + ", ".join(
            b["name"] if b["type"] == "tool_use" else "text" for b in blocks)))
        self._wait(rec, turn)

        if body.get("stream"):
            self._stream(msg_id, model, blocks, stop, usage)
        else:
            self._send_json(200, {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage,
            })

    def _stream(self, msg_id, model, blocks, stop, usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", _rand_id("req_01"))
        self.end_headers()

        def ev(name, data):
            payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()

        start_usage = dict(usage)
        start_usage["output_tokens"] = 1
        ev("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
        ev("ping", {"type": "ping"})
        for i, b in enumerate(blocks):
            if b["type"] == "text":
                ev("content_block_start", {"type": "content_block_start", "index": i,
                                           "content_block": {"type": "text", "text": ""}})
                t = b["text"]
                for j in range(0, len(t), 40) or [0]:
                    ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "text_delta", "text": t[j:j + 40]}})
            else:
                ev("content_block_start", {"type": "content_block_start", "index": i,
                                           "content_block": {"type": "tool_use", "id": b["id"],
                                                             "name": b["name"], "input": {}}})
                js = json.dumps(b["input"])
                ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                           "delta": {"type": "input_json_delta", "partial_json": ""}})
                for j in range(0, len(js), 40):
                    ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "input_json_delta",
                                                         "partial_json": js[j:j + 40]}})
            ev("content_block_stop", {"type": "content_block_stop", "index": i})
        ev("message_delta", {"type": "message_delta",
                             "delta": {"stop_reason": stop, "stop_sequence": None},
                             "usage": {"input_tokens": usage["input_tokens"],
                                       "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                                       "cache_read_input_tokens": usage["cache_read_input_tokens"],
                                       "output_tokens": usage["output_tokens"]}})
        ev("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # SIGTERM must not wait for held ("hold") requests
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--script", required=True, help="script JSON file")
    ap.add_argument("--log", required=True, help="JSON-lines request log (appended)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port-file", help="write the chosen port here (atomically)")
    ap.add_argument("--control-dir", help='directory for "hold" files (default: dir of --log)')
    a = ap.parse_args(argv)

    with open(a.script) as f:
        Handler.script = Script(json.load(f))
    Handler.log_file = open(a.log, "a", buffering=1)
    Handler.control_dir = a.control_dir or os.path.dirname(os.path.abspath(a.log))

    srv = Server((a.host, a.port), Handler)
    port = srv.server_address[1]
    print(port, flush=True)
    if a.port_file:
        tmp = f"{a.port_file}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, a.port_file)

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        Handler.log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
