//! Measures landing: the latency from an agent's exit (its commit is on its branch) to the
//! target having moved, with a trivial verify command (`true`), and the merge queue's throughput
//! with 20 ready branches that all started from the same target (each is rebased onto what the
//! ones before it landed). The baseline, measured in the same run, is the bare git work of a
//! landing done by a shell loop (rebase in a worktree, `update-ref`): the ratio is what kite's
//! lock, checks, trailers and fast-forward cost on top (the book is kept in memory here; its
//! steps through the daemon are the coordinator's to measure).
//!
//! Prints a Markdown section on stdout (for docs/BENCHMARKS.md) and progress on stderr.
//!
//! Usage: `kite-land-bench [--branches N]`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kite_land::{Lander, Landing, MemBook, MergeConfig};
use std::sync::Arc;

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git").args(args).current_dir(dir).output().expect("git runs");
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A repository with one commit on `main`, checked out (clean), and a kite home beside it.
fn repo(base: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = base.join(name);
    std::fs::create_dir_all(root.join("src")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "bench@kite"]);
    git(&root, &["config", "user.name", "bench"]);
    for i in 0..200 {
        std::fs::write(root.join(format!("src/f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "initial"]);
    let home = base.join(format!("{name}-home"));
    std::fs::create_dir_all(&home).unwrap();
    (root, home)
}

/// Branch `kite/task-ID` from main's current head with one commit to its own file (what an
/// agent leaves when it exits 0).
fn agent_branch(root: &Path, id: i64) {
    let b = format!("kite/task-{id}");
    // A commit built without a worktree: the agent's worktree is not part of what is measured.
    let head = git(root, &["rev-parse", "main"]);
    let blob = {
        let mut c = Command::new("git");
        c.args(["hash-object", "-w", "--stdin"]).current_dir(root);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        ch.stdin.take().unwrap().write_all(format!("work of task {id}\n").as_bytes()).unwrap();
        String::from_utf8(ch.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
    };
    let index = root.join(format!(".git/bench-index-{id}"));
    let env = [("GIT_INDEX_FILE", index.to_str().unwrap())];
    let run = |args: &[&str]| {
        let o = Command::new("git").args(args).current_dir(root).envs(env).output().unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    run(&["read-tree", &head]);
    run(&["update-index", "--add", "--cacheinfo", &format!("100644,{blob},work/task-{id}.txt")]);
    let tree = run(&["write-tree"]);
    let commit = run(&["commit-tree", &tree, "-p", &head, "-m", &format!("task {id}")]);
    git(root, &["update-ref", &format!("refs/heads/{b}"), &commit]);
    let _ = std::fs::remove_file(index);
}

/// The lander with its book in memory: this measures the git work of a landing (the book's
/// steps through the daemon are the coordinator's benchmark's business).
fn lander(root: &Path, home: &Path) -> Lander {
    let cfg = MergeConfig { verify: Some("true".into()), ..MergeConfig::default() };
    Lander::new(cfg, root, home, Arc::new(MemBook::default()))
}

async fn land(l: &Lander, id: i64) -> Duration {
    let t = Instant::now();
    l.enqueue(id, &format!("kite/task-{id}"), "bench", 1).await.unwrap();
    let r = l.land(id).await.unwrap();
    assert!(matches!(r, Landing::Landed { verified: true, .. }), "{r:?}");
    t.elapsed()
}

/// The same git work by hand: rebase in a detached worktree, update-ref with the old value, and
/// a fast-forward of the checkout.
fn bare_landing(root: &Path, wt: &Path, id: i64) -> Duration {
    let t = Instant::now();
    let head = git(root, &["rev-parse", "main"]);
    git(wt, &["checkout", "-q", "--detach", "-f", &format!("kite/task-{id}")]);
    git(wt, &["rebase", "-q", &head]);
    assert!(Command::new("sh").args(["-c", "true"]).current_dir(wt).status().unwrap().success());
    let new = git(wt, &["rev-parse", "HEAD"]);
    git(root, &["merge", "--ff-only", "-q", &new]);
    t.elapsed()
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// Removed when the bench ends.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: i64 = args.iter().position(|a| a == "--branches").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(20);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let base = std::env::temp_dir().join(format!("kite-land-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("a scratch directory");
    let base = Scratch(base);

    // Latency: one finished task at a time, the queue otherwise empty.
    eprintln!("landing latency: {n} single landings");
    let (root, home) = repo(base.path(), "latency");
    let l = lander(&root, &home);
    let mut single = Vec::new();
    for id in 1..=n {
        agent_branch(&root, id);
        single.push(rt.block_on(land(&l, id)));
    }
    let (root_b, _) = repo(base.path(), "bare-latency");
    let wt = base.path().join("bare-wt");
    git(&root_b, &["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), "main"]);
    let mut bare = Vec::new();
    for id in 1..=n {
        agent_branch(&root_b, id);
        bare.push(bare_landing(&root_b, &wt, id));
    }

    // Throughput: n branches ready at once, all from the same main.
    eprintln!("merge queue throughput: {n} ready branches");
    let (root_t, home_t) = repo(base.path(), "throughput");
    for id in 1..=n {
        agent_branch(&root_t, id);
    }
    let l = lander(&root_t, &home_t);
    let t = Instant::now();
    for id in 1..=n {
        rt.block_on(land(&l, id));
        if id % 5 == 0 {
            eprintln!("  {id}/{n} landed");
        }
    }
    let total = t.elapsed();
    let landed = git(&root_t, &["rev-list", "--count", "main"]).parse::<i64>().unwrap() - 1;
    assert_eq!(landed, n, "every branch landed once");
    let (root_tb, _) = repo(base.path(), "bare-throughput");
    for id in 1..=n {
        agent_branch(&root_tb, id);
    }
    let wt = base.path().join("bare-wt2");
    git(&root_tb, &["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), "main"]);
    let t = Instant::now();
    for id in 1..=n {
        bare_landing(&root_tb, &wt, id);
    }
    let bare_total = t.elapsed();

    let (p50, p99) = (pct(&mut single, 0.5), pct(&mut single, 0.99));
    let (b50, b99) = (pct(&mut bare, 0.5), pct(&mut bare, 0.99));
    println!("## Landing (merge queue)\n");
    println!("`target/release/kite-land-bench --branches {n}`: a repository of 200 files with `main`");
    println!("checked out and clean; each landing rebases the task branch in kite's merge worktree, runs the");
    println!("verify command `true`, fast-forwards main's checkout and records every step in the book. The");
    println!("baseline is the same git work by a bare loop (rebase, fast-forward), in the same run.\n");
    println!("| measure | kite | bare git | ratio |");
    println!("|---|---|---|---|");
    println!("| agent exit → main moved, p50 | {p50:.1} ms | {b50:.1} ms | {:.2}× |", p50 / b50);
    println!("| agent exit → main moved, p99 | {p99:.1} ms | {b99:.1} ms | {:.2}× |", p99 / b99);
    let tp = n as f64 / total.as_secs_f64();
    let btp = n as f64 / bare_total.as_secs_f64();
    println!(
        "| {n} ready branches, all landed | {:.2} s ({tp:.1} landings/s) | {:.2} s ({btp:.1}/s) | {:.2}× |",
        total.as_secs_f64(),
        bare_total.as_secs_f64(),
        total.as_secs_f64() / bare_total.as_secs_f64()
    );
}
