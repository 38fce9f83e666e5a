//! `kite-quality-bench --repo PATH [--commits N] [--target BRANCH]`: the cost of the survival job
//! on a real repository's history (a local clone, ripgrep's or cobra's: thousands of commits).
//!
//! Real projects carry no `Kite-Task` trailers, so each of the target's newest N non-merge
//! first-parent commits stands for one landed task. The job computes every task's signals (blame
//! at its landing, at the head, and as of 1, 7, 14 and 30 days after it) and is reported as tasks
//! (commits) per second. The baseline, in the same run: one bare `git blame -w -M -C` at the head
//! of every file those commits touched, as files per second. Prints a Markdown section.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kite_quality::{History, Landed};

struct Args {
    repo: PathBuf,
    commits: usize,
    target: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { repo: PathBuf::new(), commits: 300, target: "HEAD".into() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--repo" => a.repo = PathBuf::from(value()?),
            "--commits" => a.commits = value()?.parse().map_err(|e| format!("--commits: {e}"))?,
            "--target" => a.target = value()?,
            other => return Err(format!("unknown argument {other:?}; usage: kite-quality-bench --repo PATH [--commits N] [--target BRANCH]")),
        }
    }
    if a.repo.as_os_str().is_empty() {
        return Err("--repo PATH is required (a local clone with thousands of commits)".into());
    }
    Ok(a)
}

async fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    kite_git::git(repo, args).await.map_err(|e| e.to_string())
}

/// The newest `n` non-merge first-parent commits of `target`, each as one landed task.
async fn as_tasks(repo: &Path, target: &str, n: usize) -> Result<History, String> {
    let head = git(repo, &["rev-parse", target]).await?;
    let log = git(repo, &["log", "--first-parent", "--no-merges", "--format=%H %ct", &format!("-{n}"), &head]).await?;
    let mut h = History { target: target.into(), head: head.trim().into(), tasks: Default::default() };
    for (i, line) in log.lines().enumerate() {
        let Some((sha, ct)) = line.split_once(' ') else { continue };
        let id = i as i64 + 1;
        let landed = Landed { task: id, commits: vec![sha.into()], landing: sha.into(), landed_at: ct.parse().unwrap_or(0), reverted_by: None };
        h.tasks.insert(id, landed);
    }
    Ok(h)
}

async fn run() -> Result<(), String> {
    let a = parse_args()?;
    let history = as_tasks(&a.repo, &a.target, a.commits).await?;
    let tasks = history.tasks.len();
    eprintln!("[quality] {tasks} commits of {} as tasks: computing their signals", a.repo.display());
    let now = kite_quality::unix_now();
    let mut blamer = kite_quality::blame::Blamer::new(&a.repo);
    let t0 = Instant::now();
    let signals = kite_quality::signals::compute_with(&history, None, now, &mut blamer).await.map_err(|e| e.to_string())?;
    let job = t0.elapsed().as_secs_f64();
    let files: BTreeSet<String> = signals.iter().flat_map(|s| s.files.iter().cloned()).collect();
    eprintln!("[quality] baseline: a bare blame of each of the {} files at the head", files.len());
    let t1 = Instant::now();
    let mut blamed = 0;
    for f in &files {
        if git(&a.repo, &["cat-file", "-e", &format!("{}:{f}", history.head)]).await.is_ok() {
            git(&a.repo, &["blame", "-w", "-M", "-C", "--line-porcelain", &history.head, "--", f]).await?;
            blamed += 1;
        }
    }
    let bare = t1.elapsed().as_secs_f64();
    let measured = signals.iter().filter(|s| s.survival_30d.is_some()).count();
    let per_task = job / tasks.max(1) as f64;
    let per_blame = bare / blamed.max(1) as f64;
    println!("## Survival job (kite-quality)\n");
    println!(
        "`target/release/kite-quality-bench --repo PATH --commits {}` on a local clone of {} (not part of `make bench`, \
         which has no clone to give it). Each of the newest {tasks} non-merge first-parent commits stands for a landed \
         task; the job blames each task's files at its landing, at the head and as of 1, 7, 14 and 30 days after it \
         ({measured} tasks had all their day figures), {} `git blame` runs in all, kept per revision and file. The \
         baseline is one bare `git blame -w -M -C --line-porcelain` at the head of each of the {blamed} files the tasks \
         touched, in the same run.\n",
        a.commits,
        a.repo.display(),
        blamer.runs
    );
    println!("| job: tasks | job: time | tasks/s | baseline: files blamed | baseline: time | blames/s | job per task / bare blame per file |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {tasks} | {job:.2} s | {:.1} | {blamed} | {bare:.2} s | {:.1} | {:.2}x |",
        tasks as f64 / job,
        blamed as f64 / bare,
        per_task / per_blame
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("kite-quality-bench: {e}");
        std::process::exit(2);
    }
}
