#!/usr/bin/env python3
"""The runner's overhead per task, from `kite spawn` to landing, against the bare `claude -p`
run of the same scripted three-turn agent, in the same run.

Both sides run the real Claude Code binary (`make setup` installs it) against the Messages API
stand-in (tests/claude/stand_in.py) on loopback. The agent's script is the same for both: write
a file, commit it with Bash, answer. The bare run is `claude -p --output-format json` in a fresh
git worktree with the same permissions the adapter grants; the kite run is `kite task create`
then `kite spawn N` with `[merge] verify = "true"`: a worktree, kite's hooks (SessionStart
injection, SessionEnd extraction queued), kite's MCP server, the result read, the cost
recorded, the merge queue's rebase, verify and move of main, the clean-up. Runs alternate so
that drift on the machine hits both sides alike.

usage: agent_bench.py KITE_BINARY [RUNS]   (prints a Markdown section; progress on stderr)
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchkit import start_stand_in

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLAUDE = os.environ.get("KITE_TEST_CLAUDE", os.path.join(ROOT, "node_modules/@anthropic-ai/claude-code-linux-x64/claude"))


def claude_version():
    try:
        return subprocess.run([CLAUDE, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "(unknown version)"


def turns(name):
    return [
        {"tool_use": {"name": "Write", "input": {"file_path": f"{name}.md", "content": f"{name}\n"}}},
        {"tool_use": {"name": "Bash", "input": {"command": f"git add -A && git commit -q -m 'Add {name}'", "description": "commit"}}},
        {"text": f"Added {name}.md."},
    ]


def main():
    kite = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if not os.path.isfile(CLAUDE):
        print("## Runner overhead (real Claude Code)\n\nNot measured: Claude Code is not installed (`make setup`).")
        return
    base = tempfile.mkdtemp(prefix="kite-agent-bench")
    repo, home, bin_dir = (os.path.join(base, d) for d in ("project", "home", "bin"))
    for d in (repo, home, bin_dir):
        os.makedirs(d)
    os.symlink(CLAUDE, os.path.join(bin_dir, "claude"))
    os.symlink(kite, os.path.join(bin_dir, "kite"))
    scripts = {}
    # Newest first: the stand-in routes by the first marker it finds, and a later session's
    # context may quote an earlier run's (a note extracted from its transcript).
    for i in reversed(range(runs)):
        scripts[f"KITE-RUN-{i}"] = {"turns": turns(f"kite{i}")}
        scripts[f"BARE-RUN-{i}"] = {"turns": turns(f"bare{i}")}
    api, api_env = start_stand_in(base, scripts)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KITE_") or k in ("KITE_MODEL_DIR", "KITE_ORT_DYLIB")}
        env.setdefault("KITE_MODEL_DIR", os.path.join(ROOT, "models/all-mpnet-base-v2"))
        env.setdefault("KITE_ORT_DYLIB", os.path.join(ROOT, "models/libonnxruntime.so"))
        env.update({
            "HOME": home, "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            **api_env,
            "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b",
        })

        def run(args, cwd, **kw):
            return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)

        run(["git", "init", "-q", "-b", "main"], repo)
        open(os.path.join(repo, "README.md"), "w").write("# bench\n")
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-q", "-m", "first"], repo)
        r = run(["kite", "install"], repo)
        assert r.returncode == 0, r.stderr
        toml = os.path.join(repo, ".kite/kite.toml")
        text = open(toml).read().replace("\n[merge]\n", '\n[merge]\nverify = "true"\n', 1)
        open(toml, "w").write(text)
        allow = ["mcp__kite", "Read", "Edit", "Write", "Bash(git add:*)", "Bash(git commit:*)", "Bash(true:*)"]
        bare, kited = [], []
        for i in range(runs):
            # Bare: a fresh worktree, claude -p with the same permissions, nothing of kite's.
            wt = os.path.join(base, f"bare-{i}")
            run(["git", "worktree", "add", "-q", "-b", f"bare-{i}", wt, "main"], repo)
            t0 = time.perf_counter()
            r = run([CLAUDE, "-p", "--output-format", "json", "--permission-mode", "acceptEdits", "--strict-mcp-config",
                     "--setting-sources", "", "--allowedTools", *allow], wt, input=f"Add a file. BARE-RUN-{i}")
            bare.append(time.perf_counter() - t0)
            assert r.returncode == 0, r.stdout + r.stderr
            # kite: file the task, spawn, land.
            t0 = time.perf_counter()
            r = run(["kite", "task", "create", "--title", f"Add a file KITE-RUN-{i}", "--json"], repo)
            tid = json.loads(r.stdout)["id"]
            r = run(["kite", "spawn", str(tid), "--json"], repo)
            kited.append(time.perf_counter() - t0)
            assert r.returncode == 0, r.stdout + r.stderr
            assert os.path.exists(os.path.join(repo, f"kite{i}.md")), "landed on main"
            print(f"run {i + 1}/{runs}: bare {bare[-1]*1000:.0f} ms, kite {kited[-1]*1000:.0f} ms", file=sys.stderr)
        run(["kite", "daemon", "--stop"], repo)
    finally:
        api.kill()
        shutil.rmtree(base, ignore_errors=True)
    mb, mk = statistics.median(bare), statistics.median(kited)
    print("## Runner overhead (real Claude Code)")
    print()
    print(f"A scripted three-turn agent (Write, Bash `git add && git commit`, answer) run by Claude Code "
          f"{claude_version()} against the Messages API stand-in, {runs} runs each, alternating "
          "(`bench/agent_bench.py`). Bare: `claude -p` in a fresh worktree. kite: `kite task create` + `kite spawn` "
          "to landing on main with `verify = \"true\"` (worktree, hooks, MCP server, result and cost recorded, "
          "rebase, verify, move of main, clean-up).")
    print()
    print("| | median | min | max |")
    print("|---|---|---|---|")
    print(f"| bare `claude -p` | {mb*1000:.0f} ms | {min(bare)*1000:.0f} ms | {max(bare)*1000:.0f} ms |")
    print(f"| kite spawn → landed | {mk*1000:.0f} ms | {min(kited)*1000:.0f} ms | {max(kited)*1000:.0f} ms |")
    print()
    print(f"kite's overhead per task: **{(mk - mb)*1000:.0f} ms** (median), **{mk/mb:.2f}×** the bare run.")


if __name__ == "__main__":
    main()
