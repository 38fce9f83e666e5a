"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright.

Usage: ui_test.py KITE_BINARY PROJECT_ROOT [SCREENSHOT.png]

Run by tests/e2e/ui.rs against a daemon it started. Checks that the page is refused without the
token and loads with it, that a task created through the CLI appears on the open page within a
second, that a session waiting for a lock shows as the waiter with its wait-for edge, that a
refused deadlock shows its cycle, and that
the page reconnects by itself after the daemon restarts. Prints one JSON object of what it saw.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

KITE, ROOT = sys.argv[1], sys.argv[2]
SHOT = sys.argv[3] if len(sys.argv) > 3 else None
CHROMIUM = os.environ.get("KITE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]


def kite(*args, wait=True):
    cmd = [KITE, *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout


def status_of(url):
    try:
        with urllib.request.urlopen(url) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


url = json.loads(kite("ui", "--json"))["url"]
bare = url.split("?")[0]
seen = {"refused_without_token": status_of(bare), "refused_bad_token": status_of(bare + "?token=nope")}
# Read-only by default: an action is refused even with the token.
tok = url.split("token=")[1]
try:
    urllib.request.urlopen(urllib.request.Request(f"{bare.rstrip('/')}/api/action/prune/1?token={tok}", method="POST"))
    seen["action_refused"] = 200
except urllib.error.HTTPError as e:
    seen["action_refused"] = e.code

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    r = page.goto(bare)
    seen["browser_without_token"] = r.status
    t0 = time.monotonic()
    page.goto(url)
    page.wait_for_selector("body[data-rendered]", timeout=15000)
    page.wait_for_selector("#live.on", timeout=15000)
    seen["first_render_ms"] = round((time.monotonic() - t0) * 1000)

    # A task created through the CLI shows up on the open page.
    t0 = time.monotonic()
    kite("task", "create", "--title", "Written from the CLI", "--workstream", "docs")
    page.wait_for_selector("#graph text:has-text('Written from the CLI')", timeout=5000)
    seen["task_appeared_ms"] = round((time.monotonic() - t0) * 1000)

    # A lock held by one session and wanted by another: the waiter, and who it waits on.
    holder = json.loads(kite("session", "register", "--name", "holder", "--json"))["id"]
    waiter = json.loads(kite("session", "register", "--name", "waiter", "--json"))["id"]
    kite("lock", "acquire", "src/lib.rs", "--session", holder)
    kite("lock", "acquire", "src/other.rs", "--session", waiter)
    waiting = kite("lock", "acquire", "src/lib.rs", "--session", waiter, "--wait", "--timeout", "30", wait=False)
    t0 = time.monotonic()
    page.wait_for_selector(f"#locks tr.warn:has-text('waiting: {waiter}')", timeout=5000)
    seen["waiter_shown_ms"] = round((time.monotonic() - t0) * 1000)
    seen["wait_for_text"] = page.inner_text("#waitfor")
    # The holder now wants what the waiter holds: refused as a deadlock, and the page shows the cycle.
    refused = subprocess.run([KITE, "lock", "acquire", "src/other.rs", "--session", holder, "--wait"], cwd=ROOT, capture_output=True, text=True)
    seen["deadlock_refused"] = refused.returncode != 0 and "deadlock" in refused.stderr
    page.wait_for_selector("#waitfor .bad:has-text('refused deadlocks')", timeout=7000)
    seen["deadlock_text"] = page.inner_text("#waitfor .bad")

    # Clicking a task shows its detail.
    page.click("#graph .node >> nth=0")
    page.wait_for_selector("#detail:has-text('history:')", timeout=5000)
    seen["detail"] = page.inner_text("#detail")[:200]
    if SHOT:
        page.screenshot(path=SHOT, full_page=True)

    # The holder lets go: the waiter is granted and the page shows it holding the lock.
    kite("lock", "release", "src/lib.rs", "--session", holder)
    waiting.wait(timeout=10)
    kite("lock", "release", "src/other.rs", "--session", waiter)
    page.wait_for_selector(f"#locks td:text-is('{waiter}')", timeout=5000)
    seen["granted_shown"] = True

    # A daemon restart: the page reconnects by itself and goes on showing new work.
    kite("daemon", "--stop")
    page.wait_for_selector("#live.off", timeout=10000)
    kite("daemon", "--detach", "--no-memory")
    t0 = time.monotonic()
    page.wait_for_selector("#live.on", timeout=20000)
    kite("task", "create", "--title", "After the restart")
    page.wait_for_selector("#graph text:has-text('After the restart')", timeout=5000)
    seen["reconnected_ms"] = round((time.monotonic() - t0) * 1000)
    browser.close()

print(json.dumps(seen))
