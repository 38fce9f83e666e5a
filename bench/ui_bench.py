"""The dashboard under load: 10,000 tasks and 64 sessions, in headless Chromium (Debian's).

Usage: ui_bench.py KITE_BINARY [--tasks N] [--sessions N] [--screenshot PATH]

Starts a daemon on a temporary project, fills it through the socket (tasks in 8 workstreams,
chains of dependencies, some active, done, failed and pruned; sessions holding and waiting for
locks), then measures in the browser the first render (navigation to the graph drawn) and an
update (a task created through the CLI until the page has redrawn with it), and on the socket
the daemon's request latency (hello round trips) without a page and with the page open while
tasks are being created (every event makes the page fetch). Prints a Markdown section.

With --screenshot, a smaller population is photographed for the README instead.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from playwright.sync_api import sync_playwright

from benchkit import Sock

ap = argparse.ArgumentParser()
ap.add_argument("kite")
# The project runs in a temporary directory: the binary path must not be relative to here.
ap.add_argument("--tasks", type=int, default=10000)
ap.add_argument("--sessions", type=int, default=64)
ap.add_argument("--screenshot")
a = ap.parse_args()
a.kite = os.path.abspath(a.kite)
CHROMIUM = os.environ.get("KITE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]
root = tempfile.mkdtemp(prefix="kite-ui-bench-")
env = {k: v for k, v in os.environ.items() if not k.startswith("KITE_")}


def kite(*args):
    return subprocess.run([a.kite, *args], cwd=root, env=env, capture_output=True, text=True, check=True).stdout


def latency(path, n=2000):
    s = Sock(path)
    v = []
    for _ in range(n):
        t = time.perf_counter()
        s.call("hello")
        v.append((time.perf_counter() - t) * 1e6)
    v.sort()
    return v[len(v) // 2], v[int(len(v) * 0.99)]


def churn():
    """A writer creating a task every 50 ms until its event is set (after half a second of it)."""
    stop = threading.Event()

    def writer():
        w = Sock(sock_path)
        while not stop.is_set():
            w.call("task.create", {"title": "churn", "workstream": "perf"})
            time.sleep(0.05)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    time.sleep(0.5)
    return stop, th


subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "--allow-empty", "-m", "init"], cwd=root, check=True)
os.makedirs(os.path.join(root, "src"))
kite("daemon", "--detach", "--no-memory", "--tick", "0")
sock_path = os.path.join(root, ".kite", "kite.sock")
try:
    s = Sock(sock_path)
    small = bool(a.screenshot)
    n_tasks, n_sessions = (40, 6) if small else (a.tasks, a.sessions)
    print(f"filling: {n_tasks} tasks, {n_sessions} sessions", file=sys.stderr)
    streams = ["api", "ui", "docs", "tests", "storage", "cli", "perf", "cleanup"]
    titles = ["Add pagination to the task list", "Fix flaky lock test", "Document the merge queue", "Cache template renders",
              "Split the state owner", "Retry transient git errors", "Trim the event log", "Explain prune reasons"]
    ids = []
    for i in range(n_tasks):
        deps = [ids[-1]] if ids and i % 5 != 0 else []
        r = s.call("task.create", {"title": f"{titles[i % len(titles)]} ({i})", "workstream": streams[i % len(streams)],
                                    "priority": i % 7, "depends_on": deps})
        ids.append(r["id"])
        if i % 2000 == 1999:
            print(f"  {i + 1}/{n_tasks}", file=sys.stderr)
    sessions = [s.call("session.register", {"name": f"agent-{i}"})["id"] for i in range(n_sessions)]
    # Some work in flight and finished: roots of chains are claimable.
    for k, sid in enumerate(sessions[: min(len(sessions), 12)]):
        c = s.call("task.next", {"session": sid})
        if not c:
            continue
        if k % 4 == 1:
            s.call("task.done", {"task": c["task"]["id"], "session": sid, "claim": c["claim"], "text": "done"})
        elif k % 4 == 2:
            s.call("task.fail", {"task": c["task"]["id"], "session": sid, "claim": c["claim"], "text": "tests fail"})
    s.call("lock.acquire", {"path": "src/lib.rs", "session": sessions[0], "cwd": root})
    waiter = Sock(sock_path)
    def wait_for_lock():
        try:
            waiter.call("lock.acquire", {"path": "src/lib.rs", "session": sessions[1], "cwd": root, "wait": True, "timeout_ms": 600000})
        except (ValueError, OSError, RuntimeError):
            pass  # the daemon stopped at the end of the bench
    threading.Thread(target=wait_for_lock, daemon=True).start()
    url = json.loads(kite("ui", "--json"))["url"]

    latency(sock_path, 500)  # warm-up: the first round trips pay for page faults and caches
    bare = latency(sock_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        firsts = []
        for _ in range(1 if small else 3):
            t = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("body[data-rendered]", timeout=60000)
            page.wait_for_selector("#live.on", timeout=60000)
            firsts.append((time.perf_counter() - t) * 1000)
        if a.screenshot:
            page.wait_for_timeout(800)
            page.click("#graph .node >> nth=3")
            page.wait_for_selector("#detail:has-text('history:')")
            page.screenshot(path=a.screenshot, full_page=True)
            print(f"wrote {a.screenshot}", file=sys.stderr)
            sys.exit(0)
        updates = []
        for i in range(5):
            before = int(page.get_attribute("body", "data-tasks"))
            t = time.perf_counter()
            kite("task", "create", "--title", f"Appears live {i}")
            page.wait_for_function(f"document.body.dataset.tasks == '{before + 1}'", timeout=10000)
            updates.append((time.perf_counter() - t) * 1000)
        # The page open while work changes: a writer creates a task every 50 ms.
        stop, th = churn()
        busy = latency(sock_path)
        stop.set()
        th.join()
        browser.close()
    stop, th = churn()
    busy_no_page = latency(sock_path)
    stop.set()
    th.join()

    print("## Dashboard (kite ui)\n")
    print(f"`python bench/ui_bench.py target/release/kite` (in `make bench`): {n_tasks} tasks in 8 workstreams with")
    print(f"dependency chains, {n_sessions} sessions, a held lock and a waiter; headless Chromium (Debian's), release build.\n")
    print("| measure | result |")
    print("|---|---|")
    print(f"| first render (navigation → graph drawn, live), median of 3 | {statistics.median(firsts):.0f} ms (max {max(firsts):.0f}) |")
    print(f"| update (task created by the CLI → page redrawn with it), median of 5 | {statistics.median(updates):.0f} ms (max {max(updates):.0f}) |")
    print(f"| daemon `hello` p50 / p99, no page | {bare[0]:.0f} / {bare[1]:.0f} µs |")
    print(f"| daemon `hello` p50 / p99, a task created every 50 ms, no page | {busy_no_page[0]:.0f} / {busy_no_page[1]:.0f} µs |")
    print(f"| daemon `hello` p50 / p99, the same with the page open (it fetches on every event) | {busy[0]:.0f} / {busy[1]:.0f} µs ({busy[1] / busy_no_page[1]:.2f}× the p99 without) |")
finally:
    subprocess.run([a.kite, "daemon", "--stop"], cwd=root, env=env, capture_output=True)
