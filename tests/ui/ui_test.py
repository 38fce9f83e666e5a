"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright.

Usage: ui_test.py KITE_BINARY PROJECT_ROOT [SCREENSHOT.png]

Run by tests/e2e/ui.rs against a daemon it started. Checks that the page is refused without the
token and loads with it, that a task created through the CLI appears on the open page within a
second, that a session waiting for a lock shows as the waiter with its wait-for edge, that a
refused deadlock shows its cycle, that a message and a broadcast appear in the messages view with
their recipients, that what a session was told at its tool calls shows in the sessions panel, that
stopping a session is refused while the page is read-only, and that the page reconnects by itself
after the daemon restarts; the restarted daemon allows actions (`[ui] actions = true`), and the
stop button on a session records a stop order. Prints one JSON object of what it saw.
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


def status_of(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def session(sid):
    """The session `sid` as `kite session list --json` shows it."""
    return next(s for s in json.loads(kite("session", "list", "--json"))["sessions"] if s["id"] == sid)


url = json.loads(kite("ui", "--json"))["url"]
bare = url.split("?")[0]
seen = {"refused_without_token": status_of(bare), "refused_bad_token": status_of(bare + "?token=nope")}
# Read-only by default: an action is refused even with the token.
tok = url.split("token=")[1]
seen["action_refused"] = status_of(f"{bare.rstrip('/')}/api/action/prune/1?token={tok}", method="POST")

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
    # The quality panel: what `kite report` says (nothing has landed here yet).
    page.wait_for_selector("#quality-total:has-text('landed')", timeout=15000)
    seen["quality"] = page.inner_text("#quality-total")

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

    # A message to one session and a broadcast: in the messages view, newest first, with whom
    # they went to.
    t0 = time.monotonic()
    kite("message", waiter, "Please rebase on main", "--from", holder)
    row = page.wait_for_selector("#messages tr.msg-message:has-text('Please rebase on main')", timeout=5000)
    seen["message_shown_ms"] = round((time.monotonic() - t0) * 1000)
    seen["holder"], seen["waiter"] = holder, waiter
    seen["message_to"] = row.query_selector("td.to").inner_text()
    seen["message_row"] = row.inner_text()
    kite("broadcast", "main is frozen for the release")
    row = page.wait_for_selector("#messages tr.msg-broadcast:has-text('main is frozen for the release')", timeout=5000)
    seen["broadcast_to"] = row.query_selector("td.to").inner_text()
    seen["messages_newest_first"] = "main is frozen" in page.inner_text("#messages tr:nth-child(2)")
    # The waiter's next tool call (its tool hook) tells it both; the sessions panel shows what it was told.
    told = subprocess.run([KITE, "hook", "tool"], cwd=ROOT, capture_output=True, text=True,
                          input=json.dumps({"hook_event_name": "PostToolBatch"}), env={**os.environ, "KITE_SESSION_ID": waiter})
    seen["hook_told"] = "Please rebase on main" in told.stdout
    page.wait_for_selector(f"#sessions tr[data-session='{waiter}'] .told:has-text('Please rebase on main')", timeout=7000)
    seen["told_shown"] = page.inner_text(f"#sessions tr[data-session='{waiter}'] .told")

    # Read-only: no stop button, and the daemon refuses the action itself.
    seen["stop_buttons_read_only"] = page.locator("#sessions button.stop").count()
    seen["stop_refused"] = status_of(f"{bare.rstrip('/')}/api/action/stop/{waiter}?token={tok}", method="POST")
    seen["stop_after_refusal"] = session(waiter).get("stop")

    # A daemon restart: the page reconnects by itself and goes on showing new work.
    # It comes back with actions allowed.
    kite("daemon", "--stop")
    page.wait_for_selector("#live.off", timeout=10000)
    config = os.path.join(ROOT, ".kite", "kite.toml")
    before = open(config).read() if os.path.exists(config) else ""
    assert "[ui]" not in before, before
    with open(config, "w") as f:
        f.write(before + "\n[ui]\nactions = true\n")
    kite("daemon", "--detach", "--no-memory")
    t0 = time.monotonic()
    page.wait_for_selector("#live.on", timeout=20000)
    kite("task", "create", "--title", "After the restart")
    page.wait_for_selector("#graph text:has-text('After the restart')", timeout=5000)
    seen["reconnected_ms"] = round((time.monotonic() - t0) * 1000)

    # With actions allowed: the stop button asks for a reason and records a stop order.
    busy = json.loads(kite("session", "register", "--name", "busy", "--json"))["id"]
    stop = f"#sessions button.stop[data-session='{busy}']"
    page.wait_for_selector(stop, timeout=7000)
    page.once("dialog", lambda d: d.accept("enough for today"))
    t0 = time.monotonic()
    # A locator, not the element found above: the live page may redraw the sessions table
    # between the two (a newer update), and a locator finds the button again.
    page.locator(stop).click(timeout=7000)
    page.wait_for_selector(f"#sessions tr[data-session='{busy}'] .stop-order:has-text('enough for today')", timeout=5000)
    seen["stop_shown_ms"] = round((time.monotonic() - t0) * 1000)
    seen["stop_order"] = session(busy).get("stop")
    seen["stop_button_gone"] = page.locator(f"#sessions button.stop[data-session='{busy}']").count() == 0
    browser.close()

print(json.dumps(seen))
