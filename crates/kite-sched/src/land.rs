//! Landing: a finished task's branch onto the project's target branch, verified, one at a time.
//!
//! A task is worth something only when its change is on the target and still passes the
//! project's checks, so an agent's exit 0 is not the end: its branch is rebased (or merged) onto
//! the current target in a worktree of kite's own (`<KITE_HOME>/merge/worktree`), the verify
//! command runs there, and only then does the target move, to exactly the commit that was
//! verified. A person's files are never touched behind their back: when the target is checked
//! out in a worktree, kite moves it with `git merge --ff-only` (what a person would do) and only
//! when that worktree has no uncommitted changes to tracked files; otherwise it waits and says
//! so. It never resets, stashes, checks out or overwrites anything of a person's.
//!
//! The queue's book (`<KITE_HOME>/merge/book.json`, written whole and renamed into place) holds
//! every entry and the lifetime counts. Before the target moves, the entry records the commit it
//! moves to and the head it moves from; the move itself is one compare-and-swap of the ref
//! (`update-ref NEW OLD`, or a fast-forward). So a daemon killed in the middle leaves the target
//! before or after the change, never between, and [`Lander::land`] on restart sees which and
//! lands the entry once. One landing at a time, across processes, through a lock file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::proc::{self, Exit, Shell};

/// `[merge]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MergeConfig {
    /// Land finished tasks (false: a task is done when its agent exits 0, as before).
    pub land: bool,
    /// The branch work lands on; default: the branch the project's main worktree has checked out.
    pub target: Option<String>,
    /// Run in kite's merge worktree on the candidate commit; exit 0 lands it. Default: the test
    /// command the strategy loop detects (`cargo test`, `go test`, ...); `""`: land unverified.
    pub verify: Option<String>,
    #[serde(with = "crate::duration::serde_human")]
    pub verify_timeout: Duration,
    /// `rebase` (linear history) or `merge` (a merge commit per task).
    pub strategy: Strategy,
    /// How often a landing waiting on a person's uncommitted changes looks again.
    #[serde(with = "crate::duration::serde_human")]
    pub wait_poll: Duration,
    /// Longest a landing waits on them before the task goes back with that reason.
    #[serde(with = "crate::duration::serde_human")]
    pub wait_max: Duration,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            land: true,
            target: None,
            verify: None,
            verify_timeout: Duration::from_secs(30 * 60),
            strategy: Strategy::Rebase,
            wait_poll: Duration::from_secs(5),
            wait_max: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Rebase,
    Merge,
}

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Verifying,
    /// Verified; the target is being moved to `new` from `base`.
    Moving,
    /// The target is checked out with uncommitted changes; kite waits for the person.
    Waiting,
    Landed,
    Conflict,
    Rejected,
    /// The agent committed nothing.
    NoChanges,
    /// A person gave the work up (`kite merge discard`).
    Discarded,
    /// Landing itself failed (git refused something kite did not expect); the task went back.
    Failed,
}

impl State {
    /// Still to be landed (a restart resumes these).
    pub fn in_flight(self) -> bool {
        matches!(self, State::Queued | State::Verifying | State::Moving | State::Waiting)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        f.write_str(&s.replace('_', " "))
    }
}

/// One task in the merge queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub task_id: i64,
    pub title: String,
    #[serde(default)]
    pub template: Option<String>,
    pub branch: String,
    /// The branch it lands on, fixed when it was queued (a person switching their checkout
    /// later does not change where queued work goes).
    #[serde(default)]
    pub target: Option<String>,
    pub state: State,
    /// What happened, in words (the conflict's files, the verify output's tail, where it waits).
    #[serde(default)]
    pub detail: String,
    /// The target head it was verified against, and the commit the target moves to.
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub new: Option<String>,
    /// Whether a verify command passed (false: landed "not verified").
    #[serde(default)]
    pub verified: bool,
    /// The claim the runner holds while the entry lands, so a restart can finish the task.
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub token: Option<u64>,
    pub queued_at_ms: i64,
    pub updated_at_ms: i64,
    #[serde(default)]
    pub attempts: u32,
}

/// Lifetime counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub landed: u64,
    pub rejected: u64,
    pub conflicted: u64,
    #[serde(default)]
    pub not_verified: u64,
}

/// The merge queue's durable record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub total: Counts,
    #[serde(default)]
    pub by_template: BTreeMap<String, Counts>,
}

/// Entries kept once they are finished (the newest); in-flight entries are always kept.
const KEEP_FINISHED: usize = 500;

impl Book {
    pub fn path(home: &Path) -> PathBuf {
        home.join("merge").join("book.json")
    }

    /// The book in `home`; empty when there is none yet. A book that does not parse is an error
    /// (it is never overwritten silently).
    pub fn load(home: &Path) -> Result<Book, LandError> {
        let p = Book::path(home);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| LandError::Book(format!("{} does not parse ({e}); move it aside to start a new one", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Book::default()),
            Err(e) => Err(LandError::Book(format!("{}: {e}", p.display()))),
        }
    }

    /// Written whole to a temporary file, synced and renamed into place.
    pub fn save(&mut self, home: &Path) -> Result<(), LandError> {
        let finished: Vec<usize> = (0..self.entries.len()).filter(|&i| !self.entries[i].state.in_flight()).collect();
        if finished.len() > KEEP_FINISHED {
            let drop: std::collections::HashSet<usize> = finished[..finished.len() - KEEP_FINISHED].iter().copied().collect();
            let mut i = 0;
            self.entries.retain(|_| {
                i += 1;
                !drop.contains(&(i - 1))
            });
        }
        let p = Book::path(home);
        let err = |e: std::io::Error| LandError::Book(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(p.parent().expect("book has a parent")).map_err(err)?;
        let tmp = p.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| LandError::Book(e.to_string()))?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&bytes).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &p).map_err(err)
    }

    pub fn entry(&self, task_id: i64) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.task_id == task_id)
    }

    fn entry_mut(&mut self, task_id: i64) -> Option<&mut Entry> {
        self.entries.iter_mut().rev().find(|e| e.task_id == task_id)
    }

    fn count(&mut self, template: Option<&str>, f: impl Fn(&mut Counts)) {
        f(&mut self.total);
        if let Some(t) = template {
            f(self.by_template.entry(t.to_string()).or_default());
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LandError {
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    #[error("merge book: {0}")]
    Book(String),
    #[error("{0}")]
    Target(String),
}

/// How one landing ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Landing {
    Landed { commit: String, target: String, verified: bool },
    /// Its commits do not apply on the target: files and hunks, for the next attempt.
    Conflict { target: String, files: Vec<String>, context: String },
    /// The verify command failed on the candidate: its output's tail.
    Rejected { command: String, output: String },
    /// The branch has no commit the target lacks.
    NoChanges { uncommitted: Vec<String> },
    /// Waited [`MergeConfig::wait_max`] on a person's uncommitted changes.
    Waited { detail: String },
}

impl Landing {
    /// The sentence a task carries when it goes back (or fails) because of this landing.
    pub fn reason(&self) -> String {
        match self {
            Landing::Landed { commit, target, verified } => {
                format!("landed {} on {target}{}", short(commit), if *verified { ", verified" } else { " (not verified)" })
            }
            Landing::Conflict { target, files, context } => format!(
                "its branch conflicts with {target} (where other work landed meanwhile) in {}; rebase onto {target} \
                 and resolve, keeping both changes:\n{context}",
                files.join(", ")
            ),
            Landing::Rejected { command, output } => format!("the verify command `{command}` failed on it:\n{output}"),
            Landing::NoChanges { uncommitted } if uncommitted.is_empty() => "the agent exited 0 but committed nothing".into(),
            Landing::NoChanges { uncommitted } => format!(
                "the agent exited 0 but committed nothing; it left uncommitted changes in {} (kept in its worktree)",
                uncommitted.join(", ")
            ),
            Landing::Waited { detail } => detail.clone(),
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// Characters of a conflict's hunks or a verify's output kept for the next attempt.
const CONTEXT_CHARS: usize = 4000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs git; stdout trimmed on success.
pub(crate) async fn git(cwd: &Path, args: &[&str]) -> Result<String, LandError> {
    let o = tokio::process::Command::new("git")
        .args(args)
        .current_dir(cwd)
        // kite's own commits (a rebase, a merge) need an identity even where the person set none;
        // theirs, when set, is used.
        .env("GIT_EDITOR", "true")
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| LandError::Git { args: args.join(" "), message: e.to_string() })?;
    if o.status.success() {
        // Only the end: porcelain status lines start with a meaningful space.
        Ok(String::from_utf8_lossy(&o.stdout).trim_end().to_string())
    } else {
        let mut message = String::from_utf8_lossy(&o.stderr).trim().to_string();
        if message.is_empty() {
            message = String::from_utf8_lossy(&o.stdout).trim().to_string();
        }
        Err(LandError::Git { args: args.join(" "), message })
    }
}

async fn has_identity(repo: &Path) -> bool {
    git(repo, &["config", "user.email"]).await.is_ok()
}

/// One worktree of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitWorktree {
    pub path: PathBuf,
    pub head: Option<String>,
    /// `main`, not `refs/heads/main`; `None` when detached.
    pub branch: Option<String>,
}

pub async fn worktrees(repo: &Path) -> Result<Vec<GitWorktree>, LandError> {
    let out = git(repo, &["worktree", "list", "--porcelain"]).await?;
    let mut v = Vec::new();
    for block in out.split("\n\n") {
        let mut w = GitWorktree { path: PathBuf::new(), head: None, branch: None };
        for line in block.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                w.path = PathBuf::from(p);
            } else if let Some(h) = line.strip_prefix("HEAD ") {
                w.head = Some(h.to_string());
            } else if let Some(b) = line.strip_prefix("branch ") {
                w.branch = Some(b.strip_prefix("refs/heads/").unwrap_or(b).to_string());
            }
        }
        if !w.path.as_os_str().is_empty() {
            v.push(w);
        }
    }
    Ok(v)
}

/// The target branch: configured, or what the main worktree (the first listed) has checked out.
pub async fn target_branch(repo: &Path, cfg: &MergeConfig) -> Result<String, LandError> {
    if let Some(t) = &cfg.target {
        return Ok(t.clone());
    }
    let main = worktrees(repo).await?.into_iter().next();
    match main.and_then(|w| w.branch) {
        Some(b) => Ok(b),
        None => Err(LandError::Target(
            "the project's main worktree has no branch checked out (detached HEAD); set [merge] target in kite.toml".into(),
        )),
    }
}

/// Tracked files with uncommitted changes in a worktree.
pub async fn dirty_tracked(dir: &Path) -> Result<Vec<String>, LandError> {
    crate::worktree::changed_files(dir, false).await.map_err(|e| LandError::Git { args: e.args, message: e.message })
}

/// Commits on `branch` that `target` lacks (`%h %s` each).
pub async fn unmerged(repo: &Path, target: &str, branch: &str) -> Result<Vec<String>, LandError> {
    let out = git(repo, &["log", "--format=%h %s", &format!("refs/heads/{target}..refs/heads/{branch}")]).await?;
    Ok(out.lines().map(str::to_string).collect())
}

/// The merge queue's worker: lands one entry at a time.
pub struct Lander {
    pub cfg: MergeConfig,
    repo: PathBuf,
    home: PathBuf,
}

impl Lander {
    pub fn new(cfg: MergeConfig, repo: impl Into<PathBuf>, home: impl Into<PathBuf>) -> Self {
        Lander { cfg, repo: repo.into(), home: home.into() }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    fn worktree(&self) -> PathBuf {
        self.home.join("merge").join("worktree")
    }

    /// The verify command: configured, else the detected test runner's; `None`: land unverified.
    pub fn verify_command(&self) -> Option<String> {
        match &self.cfg.verify {
            Some(c) if c.trim().is_empty() => None,
            Some(c) => Some(c.clone()),
            None => crate::testrun::detect(&self.repo).map(|r| {
                let report = self.home.join("merge").join("verify-report");
                r.command.replace("{report}", &format!("'{}'", report.display()))
            }),
        }
    }

    /// Changes the book under the landing lock's protection (callers hold it).
    fn update(&self, task_id: i64, f: impl FnOnce(&mut Entry)) -> Result<(), LandError> {
        let mut book = Book::load(&self.home)?;
        if let Some(e) = book.entry_mut(task_id) {
            f(e);
            e.updated_at_ms = now_ms();
        }
        book.save(&self.home)
    }

    /// Puts a finished task in the queue (or back in it: a resumed entry keeps its record).
    pub async fn enqueue(&self, task: &crate::Task, branch: &str, session: &str, token: u64) -> Result<(), LandError> {
        let target = target_branch(&self.repo, &self.cfg).await?;
        let _lock = self.lock().await?;
        let mut book = Book::load(&self.home)?;
        let now = now_ms();
        // A task has one entry in flight: an earlier attempt's (cut short) gives way to this one.
        book.entries.retain(|e| !(e.task_id == task.id && e.state.in_flight()));
        book.entries.push(Entry {
            task_id: task.id,
            title: task.title.clone(),
            template: task.template.clone(),
            branch: branch.to_string(),
            target: Some(target),
            state: State::Queued,
            detail: String::new(),
            base: None,
            new: None,
            verified: false,
            session: Some(session.to_string()),
            token: Some(token),
            queued_at_ms: now,
            updated_at_ms: now,
            attempts: task.attempts,
        });
        book.save(&self.home)
    }

    /// The landing lock: one landing at a time, in this process and across processes (a CLI's
    /// `kite spawn` and the daemon's runner).
    async fn lock(&self) -> Result<LockFile, LandError> {
        let p = self.home.join("merge").join("lock");
        let err = |e: std::io::Error| LandError::Book(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(p.parent().expect("parent")).map_err(err)?;
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(err)?;
        loop {
            match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(LockFile(f)),
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Err(err(e.into())),
            }
        }
    }

    /// Lands a queued task's branch: waits its turn, then rebases (or merges), verifies and moves
    /// the target; waits while the target's worktree has a person's uncommitted changes. The book
    /// records every step and the outcome, and the lifetime counts.
    pub async fn land(&self, task_id: i64) -> Result<Landing, LandError> {
        let started = std::time::Instant::now();
        loop {
            let lock = self.lock().await?;
            let book = Book::load(&self.home)?;
            let Some(entry) = book.entry(task_id).cloned() else {
                return Err(LandError::Book(format!("task {task_id} is not in the merge queue")));
            };
            // Finished already (a resume after the book said so): its outcome, not a new landing.
            if !entry.state.in_flight() {
                return match (entry.state, &entry.new) {
                    (State::Landed, Some(new)) => Ok(Landing::Landed {
                        commit: new.clone(),
                        target: entry.target.clone().unwrap_or_default(),
                        verified: entry.verified,
                    }),
                    (state, _) => Err(LandError::Book(format!("task {task_id}'s landing already ended: {state}"))),
                };
            }
            let r = self.land_once(&entry).await;
            let landing = match r {
                Ok(Some(l)) => l,
                Ok(None) => {
                    // Waiting on a person: let others through, look again later.
                    drop(lock);
                    if started.elapsed() >= self.cfg.wait_max {
                        let detail = Book::load(&self.home)?.entry(task_id).map(|e| e.detail.clone()).unwrap_or_default();
                        let _lock = self.lock().await?;
                        return self.finish(&entry, Landing::Waited { detail: format!("waited too long: {detail}") });
                    }
                    tokio::time::sleep(self.cfg.wait_poll).await;
                    continue;
                }
                Err(e) => {
                    // Landing failed on git itself: the branch and the target are as they were,
                    // and the entry ends (the task goes back; its next attempt queues anew).
                    let _ = self.update(task_id, |e2| {
                        e2.state = State::Failed;
                        e2.detail = format!("landing failed: {e}");
                    });
                    return Err(e);
                }
            };
            let out = self.finish(&entry, landing);
            drop(lock);
            return out;
        }
    }

    fn finish(&self, entry: &Entry, landing: Landing) -> Result<Landing, LandError> {
        let mut book = Book::load(&self.home)?;
        let template = entry.template.clone();
        let (state, detail) = match &landing {
            Landing::Landed { verified, .. } => {
                book.count(template.as_deref(), |c| {
                    c.landed += 1;
                    if !verified {
                        c.not_verified += 1;
                    }
                });
                (State::Landed, landing.reason())
            }
            Landing::Conflict { files, .. } => {
                book.count(template.as_deref(), |c| c.conflicted += 1);
                (State::Conflict, format!("conflicts in {}", files.join(", ")))
            }
            Landing::Rejected { output, .. } => {
                book.count(template.as_deref(), |c| c.rejected += 1);
                (State::Rejected, proc::tail(output, 600).to_string())
            }
            Landing::NoChanges { .. } => (State::NoChanges, landing.reason()),
            // Not landed, and not the work's fault: not counted against its template.
            Landing::Waited { detail } => (State::Rejected, detail.clone()),
        };
        if let Some(e) = book.entry_mut(entry.task_id) {
            e.state = state;
            e.detail = detail;
            e.updated_at_ms = now_ms();
            if let Landing::Landed { verified, commit, .. } = &landing {
                e.verified = *verified;
                e.new = Some(commit.clone());
            }
        }
        book.save(&self.home)?;
        tracing::info!(task = entry.task_id, state = %state, "landing: {}", proc::tail(&landing.reason(), 200));
        Ok(landing)
    }

    /// One try. `Ok(None)`: waiting on a person's uncommitted changes (the book says where).
    async fn land_once(&self, entry: &Entry) -> Result<Option<Landing>, LandError> {
        let repo = &self.repo;
        let target = match &entry.target {
            Some(t) => t.clone(),
            None => target_branch(repo, &self.cfg).await?,
        };
        let target_ref = format!("refs/heads/{target}");
        let head = git(repo, &["rev-parse", "--verify", &format!("{target_ref}^{{commit}}")]).await.map_err(|_| {
            LandError::Target(format!("the target branch `{target}` does not exist; set [merge] target in kite.toml"))
        })?;
        let tip = git(repo, &["rev-parse", "--verify", &format!("refs/heads/{}^{{commit}}", entry.branch)]).await?;

        // Resumed after the target moved but before the book said so: it landed.
        if let (State::Moving, Some(new)) = (entry.state, &entry.new) {
            if git(repo, &["merge-base", "--is-ancestor", new, &head]).await.is_ok() {
                self.after_landing(entry, new).await;
                return Ok(Some(Landing::Landed { commit: new.clone(), target, verified: entry.verified }));
            }
        }
        // Nothing the target lacks: the agent committed nothing (or it all landed already).
        if git(repo, &["merge-base", "--is-ancestor", &tip, &head]).await.is_ok() {
            let wt = worktrees(repo).await?.into_iter().find(|w| w.branch.as_deref() == Some(entry.branch.as_str()));
            let uncommitted = match wt {
                Some(w) => crate::worktree::uncommitted(&w.path).await.unwrap_or_default(),
                None => vec![],
            };
            return Ok(Some(Landing::NoChanges { uncommitted }));
        }

        // A person's checkout of the target that kite may not move now: wait before doing any
        // work (a verify per poll would run the tests every few seconds).
        if let Some(why) = self.blocked(&target).await? {
            self.update(entry.task_id, |e| {
                e.state = State::Waiting;
                e.detail = why;
            })?;
            return Ok(None);
        }

        // The candidate, in kite's own worktree.
        let lw = self.worktree();
        if !lw.join(".git").exists() {
            // `-f` also takes over a registered path that is missing; no `worktree prune`, which
            // would forget a person's worktree that is only unmounted.
            std::fs::create_dir_all(lw.parent().expect("parent"))
                .map_err(|e| LandError::Book(format!("{}: {e}", lw.display())))?;
            git(repo, &["worktree", "add", "--detach", "-f", &lw.to_string_lossy(), &head]).await?;
        }
        // A rebase or merge a killed daemon left half done.
        let _ = git(&lw, &["rebase", "--abort"]).await;
        let _ = git(&lw, &["merge", "--abort"]).await;
        let mut ident: Vec<String> = vec!["-c".into(), "commit.gpgsign=false".into(), "-c".into(), "rebase.updateRefs=false".into()];
        if !has_identity(repo).await {
            ident.extend(["-c".into(), "user.name=kite".into(), "-c".into(), "user.email=kite@localhost".into()]);
        }
        let with_ident = |args: &[&str]| -> Vec<String> { ident.iter().cloned().chain(args.iter().map(|s| s.to_string())).collect() };
        let run = |args: Vec<String>| {
            let lw = lw.clone();
            async move {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                git(&lw, &a).await
            }
        };
        // Already on top of the target: it lands as it is (a merge commit an agent made to
        // resolve a conflict stays, instead of being flattened into the same conflict again).
        let on_top = git(repo, &["merge-base", "--is-ancestor", &head, &tip]).await.is_ok();
        // Every commit kite lands carries `Kite-Task: N`, so what a task did can be read from git
        // alone. The commits are replayed with the trailer amended in (a commit that has it
        // already keeps one); a branch with merge commits in it lands as it is.
        let trailer = crate::worktree::trailer(entry.task_id);
        let amend = format!("git -c commit.gpgsign=false commit -q --amend --no-edit --no-verify --trailer '{trailer}'");
        let base = git(repo, &["merge-base", &head, &tip]).await?;
        let linear = git(repo, &["rev-list", "--merges", "--count", &format!("{base}..{tip}")]).await.map(|n| n.trim() == "0").unwrap_or(false);
        let applied = match self.cfg.strategy {
            _ if on_top => {
                git(&lw, &["checkout", "--detach", "-f", &tip]).await?;
                git(&lw, &["clean", "-fdq"]).await?;
                if linear {
                    run(with_ident(&["rebase", "-q", "--force-rebase", "--no-autosquash", "--exec", &amend, &head])).await
                } else {
                    Ok(String::new())
                }
            }
            Strategy::Rebase if linear => {
                git(&lw, &["checkout", "--detach", "-f", &tip]).await?;
                git(&lw, &["clean", "-fdq"]).await?;
                run(with_ident(&["rebase", "-q", "--no-autosquash", "--exec", &amend, &head])).await
            }
            Strategy::Rebase => {
                git(&lw, &["checkout", "--detach", "-f", &tip]).await?;
                git(&lw, &["clean", "-fdq"]).await?;
                run(with_ident(&["rebase", "--no-autosquash", &head])).await
            }
            Strategy::Merge => {
                // The branch's own commits get the trailer where they stand (no conflict can
                // come of replaying them on their own base), then the merge.
                let mut tip = tip.clone();
                if linear {
                    git(&lw, &["checkout", "--detach", "-f", &tip]).await?;
                    git(&lw, &["clean", "-fdq"]).await?;
                    run(with_ident(&["rebase", "-q", "--force-rebase", "--no-autosquash", "--exec", &amend, &base])).await?;
                    tip = git(&lw, &["rev-parse", "HEAD"]).await?;
                }
                git(&lw, &["checkout", "--detach", "-f", &head]).await?;
                git(&lw, &["clean", "-fdq"]).await?;
                let msg = format!("Merge {} (kite task {}): {}\n\n{trailer}", entry.branch, entry.task_id, entry.title);
                run(with_ident(&["merge", "--no-ff", "--no-edit", "-m", &msg, &tip])).await
            }
        };
        if let Err(e) = applied {
            let files: Vec<String> = git(&lw, &["diff", "--name-only", "--diff-filter=U"])
                .await
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            let hunks = git(&lw, &["diff"]).await.unwrap_or_default();
            let _ = git(&lw, &["rebase", "--abort"]).await;
            let _ = git(&lw, &["merge", "--abort"]).await;
            // No unmerged file: not a conflict but git refusing (a hook, say): say what it said.
            if files.is_empty() {
                return Err(e);
            }
            let context = proc::tail(&hunks, CONTEXT_CHARS).to_string();
            return Ok(Some(Landing::Conflict { target, files, context }));
        }
        crate::testrun::link_installed(repo, &lw).await;
        let new = git(&lw, &["rev-parse", "HEAD"]).await?;

        // Verify the exact commit that will land.
        let verify = self.verify_command();
        if let Some(cmd) = &verify {
            self.update(entry.task_id, |e| {
                e.state = State::Verifying;
                e.base = Some(head.clone());
                e.detail = format!("running `{cmd}` on {} (onto {target} at {})", short(&new), short(&head));
            })?;
            let o = proc::run(Shell {
                command: proc::Program::Sh(&format!("{cmd} 2>&1")),
                cwd: &lw,
                env: vec![("KITE_TASK_ID".into(), entry.task_id.to_string()), ("CI".into(), "1".into())],
                stdin: None,
                timeout: Some(self.cfg.verify_timeout),
                cap: 1 << 20,
            })
            .await
            .map_err(|e| LandError::Git { args: cmd.clone(), message: format!("cannot run: {e}") })?;
            if o.exit != Exit::Code(0) {
                let why = if o.exit == Exit::TimedOut { "timed out".to_string() } else { o.exit.to_string() };
                let output = format!("({why})\n{}", proc::tail(o.stdout.trim(), CONTEXT_CHARS));
                return Ok(Some(Landing::Rejected { command: cmd.clone(), output }));
            }
        }

        // Move the target, the way a person would (and not while they are in the middle of it:
        // they may have started changing files during the verify).
        if let Some(why) = self.blocked(&target).await? {
            self.update(entry.task_id, |e| {
                e.state = State::Waiting;
                e.detail = why;
            })?;
            return Ok(None);
        }
        let holder = worktrees(repo).await?.into_iter().find(|w| w.branch.as_deref() == Some(target.as_str()));
        let verified = verify.is_some();
        self.update(entry.task_id, |e| {
            e.state = State::Moving;
            e.base = Some(head.clone());
            e.new = Some(new.clone());
            e.verified = verified;
        })?;
        let moved = match &holder {
            Some(w) => git(&w.path, &["merge", "--ff-only", "--no-overwrite-ignore", "-q", &new]).await,
            None => git(repo, &["update-ref", "-m", &format!("kite: land task {}", entry.task_id), &target_ref, &new, &head]).await,
        };
        let now = git(repo, &["rev-parse", &target_ref]).await?;
        if let (Err(e), true) = (&moved, now == head) {
            // git refused to move the person's checkout (an untracked file in the way, say).
            let detail = format!("waiting: git would not fast-forward {target} in its worktree: {e}");
            self.update(entry.task_id, |x| {
                x.state = State::Waiting;
                x.detail = detail;
            })?;
            return Ok(None);
        }
        if now != new {
            // Someone moved the target meanwhile: verify again against the new head.
            tracing::info!(task = entry.task_id, "landing: {target} moved meanwhile; trying again on the new head");
            self.update(entry.task_id, |e| {
                e.state = State::Queued;
                e.detail = format!("{target} moved while landing; landing again on its new head");
            })?;
            return Box::pin(self.land_once(&Entry { state: State::Queued, ..entry.clone() })).await;
        }
        self.after_landing(entry, &new).await;
        Ok(Some(Landing::Landed { commit: new, target, verified }))
    }

    /// The task branch now points at what landed, so its commits are on the target and removing
    /// it loses nothing.
    /// Why the target may not move now, if it may not: it is checked out in a worktree with
    /// uncommitted changes to tracked files, or the main worktree is in the middle of a rebase,
    /// a merge or a bisect (its HEAD may be detached from the target meanwhile).
    async fn blocked(&self, target: &str) -> Result<Option<String>, LandError> {
        let all = worktrees(&self.repo).await?;
        if let Some(w) = all.iter().find(|w| w.branch.as_deref() == Some(target)) {
            let dirty = dirty_tracked(&w.path).await?;
            if !dirty.is_empty() {
                return Ok(Some(format!(
                    "waiting: {target} is checked out in {} with uncommitted changes ({}); kite lands once they are committed",
                    w.path.display(),
                    dirty.join(", ")
                )));
            }
        }
        if let Some(main) = all.first() {
            for marker in ["rebase-merge", "rebase-apply", "MERGE_HEAD", "BISECT_LOG"] {
                let p = git(&main.path, &["rev-parse", "--path-format=absolute", "--git-path", marker]).await?;
                if Path::new(&p).exists() {
                    let what = marker.split(['-', '_']).next().unwrap_or(marker).to_lowercase();
                    return Ok(Some(format!(
                        "waiting: {} is in the middle of a {what}; kite lands once it is finished",
                        main.path.display()
                    )));
                }
            }
        }
        Ok(None)
    }

    /// When the branch is checked out in its task's worktree (kite's, not a person's), it moves
    /// there with `reset --keep`, which keeps anything uncommitted (or refuses, and the branch
    /// stays as it was, listed by `kite worktrees`).
    async fn after_landing(&self, entry: &Entry, new: &str) {
        let r = format!("refs/heads/{}", entry.branch);
        let wt = worktrees(&self.repo).await.ok().and_then(|v| v.into_iter().find(|w| w.branch.as_deref() == Some(entry.branch.as_str())));
        let moved = match wt {
            Some(w) => git(&w.path, &["reset", "-q", "--keep", new]).await,
            None => git(&self.repo, &["update-ref", &r, new]).await,
        };
        if let Err(e) = moved {
            tracing::warn!(task = entry.task_id, "landing: {} stays where it was (not moved to the landed commit): {e}", entry.branch);
        }
    }

    /// Entries a restart must finish.
    pub fn in_flight(&self) -> Result<Vec<Entry>, LandError> {
        Ok(Book::load(&self.home)?.entries.into_iter().filter(|e| e.state.in_flight()).collect())
    }

    /// `kite merge discard`: gives up a task's unlanded work: its worktree (uncommitted changes
    /// too) and its branch. Refused while the entry is landing.
    pub async fn discard(&self, task_id: i64) -> Result<Vec<String>, LandError> {
        let _lock = self.lock().await?;
        let mut book = Book::load(&self.home)?;
        if let Some(e) = book.entry(task_id).filter(|e| e.state.in_flight()) {
            return Err(LandError::Target(format!("task {task_id} is {} in the merge queue; wait for it to finish", e.state)));
        }
        let branch = crate::worktree::branch_name(task_id);
        let mut gone = Vec::new();
        for w in worktrees(&self.repo).await? {
            if w.branch.as_deref() == Some(branch.as_str()) {
                git(&self.repo, &["worktree", "remove", "--force", &w.path.to_string_lossy()]).await?;
                gone.push(format!("worktree {}", w.path.display()));
            }
        }
        if git(&self.repo, &["rev-parse", "--verify", "-q", &format!("refs/heads/{branch}")]).await.is_ok() {
            git(&self.repo, &["branch", "-D", &branch]).await?;
            gone.push(format!("branch {branch}"));
        }
        if gone.is_empty() {
            return Err(LandError::Target(format!("task {task_id} has no kite worktree or branch")));
        }
        if let Some(e) = book.entry_mut(task_id) {
            e.state = State::Discarded;
            e.detail = format!("discarded by hand: {}", gone.join(", "));
            e.updated_at_ms = now_ms();
        }
        book.save(&self.home)?;
        Ok(gone)
    }
}

struct LockFile(#[allow(dead_code)] std::fs::File);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{git as tgit, git_repo, write};

    fn task(id: i64) -> crate::Task {
        let mut t = crate::memqueue::snap(id, &format!("task {id}"));
        t.template = Some("chores".into());
        t
    }

    /// A branch `kite/task-ID` from main with one commit writing `file`.
    fn branch_with(repo: &Path, id: i64, file: &str, text: &str) {
        let b = crate::worktree::branch_name(id);
        tgit(repo, &["branch", &b, "main"]);
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("wt");
        tgit(repo, &["worktree", "add", "-q", &wt.to_string_lossy(), &b]);
        write(&wt, file, text);
        tgit(&wt, &["add", "-A"]);
        tgit(&wt, &["commit", "-qm", &format!("task {id}: {file}")]);
        tgit(repo, &["worktree", "remove", "--force", &wt.to_string_lossy()]);
    }

    fn lander(repo: &Path, home: &Path, verify: &str) -> Lander {
        let cfg = MergeConfig { verify: Some(verify.into()), wait_poll: Duration::from_millis(50), wait_max: Duration::from_millis(400), ..Default::default() };
        Lander::new(cfg, repo, home)
    }

    async fn land(l: &Lander, id: i64) -> Landing {
        l.enqueue(&task(id), &crate::worktree::branch_name(id), "s", 1).await.unwrap();
        l.land(id).await.unwrap()
    }

    #[tokio::test]
    async fn two_independent_branches_land_and_a_clean_checkout_is_fast_forwarded() {
        let repo = git_repo();
        let p = repo.path();
        let home = tempfile::tempdir().unwrap();
        branch_with(p, 1, "a.txt", "a\n");
        branch_with(p, 2, "b.txt", "b\n");
        let l = lander(p, home.path(), "test -f README.md");
        assert!(matches!(land(&l, 1).await, Landing::Landed { verified: true, .. }));
        assert!(matches!(land(&l, 2).await, Landing::Landed { .. }));
        let log = tgit(p, &["log", "--format=%s", "main"]);
        assert!(log.contains("task 1: a.txt") && log.contains("task 2: b.txt"), "{log}");
        // Every landed commit names its task in a trailer (the first was already on top of main).
        let trailers = tgit(p, &["log", "--format=%(trailers:key=Kite-Task,valueonly,separator=%x2C)", "main"]);
        let trailers: Vec<&str> = trailers.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(trailers, ["2", "1"], "{trailers:?}");
        // main is checked out and was clean: its files moved with it, as a pull would.
        assert!(p.join("a.txt").exists() && p.join("b.txt").exists());
        assert_eq!(tgit(p, &["status", "--porcelain"]), "");
        let book = Book::load(home.path()).unwrap();
        assert_eq!(book.total, Counts { landed: 2, ..Default::default() });
        assert_eq!(book.by_template["chores"].landed, 2);
        assert!(unmerged(p, "main", "kite/task-2").await.unwrap().is_empty(), "the branch is on main now");
    }

    #[tokio::test]
    async fn a_conflict_a_failed_verify_and_no_commits_do_not_land() {
        let repo = git_repo();
        let p = repo.path();
        let home = tempfile::tempdir().unwrap();
        branch_with(p, 1, "README.md", "# one\n");
        branch_with(p, 2, "README.md", "# two\n");
        let l = lander(p, home.path(), "");
        assert!(matches!(land(&l, 1).await, Landing::Landed { verified: false, .. }));
        let before = tgit(p, &["rev-parse", "main"]);
        match land(&l, 2).await {
            Landing::Conflict { files, context, target } => {
                assert_eq!((files, target.as_str()), (vec!["README.md".to_string()], "main"));
                assert!(context.contains("<<<<<<<") && context.contains("# two"), "{context}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(tgit(p, &["rev-parse", "main"]), before, "main did not move");
        assert!(tgit(&home.path().join("merge/worktree"), &["status", "--porcelain"]).is_empty(), "no rebase left half done");

        branch_with(p, 3, "c.txt", "c\n");
        let l = lander(p, home.path(), "echo 'test foo ... FAILED'; exit 3");
        match land(&l, 3).await {
            Landing::Rejected { output, .. } => assert!(output.contains("FAILED") && output.contains("exit code 3"), "{output}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(tgit(p, &["rev-parse", "main"]), before);

        tgit(p, &["branch", "kite/task-4", "main"]);
        assert_eq!(land(&l, 4).await, Landing::NoChanges { uncommitted: vec![] });
        let book = Book::load(home.path()).unwrap();
        assert_eq!(book.total, Counts { landed: 1, rejected: 1, conflicted: 1, not_verified: 1 });
        let states: Vec<State> = book.entries.iter().map(|e| e.state).collect();
        assert_eq!(states, [State::Landed, State::Conflict, State::Rejected, State::NoChanges]);
    }

    #[tokio::test]
    async fn a_persons_uncommitted_changes_are_waited_on_never_touched() {
        let repo = git_repo();
        let p = repo.path();
        let home = tempfile::tempdir().unwrap();
        branch_with(p, 1, "a.txt", "a\n");
        write(p, "README.md", "# mine, not committed\n");
        let l = lander(p, home.path(), "");
        l.enqueue(&task(1), "kite/task-1", "s", 1).await.unwrap();
        let before = tgit(p, &["rev-parse", "main"]);
        let h = {
            let (p, home) = (p.to_path_buf(), home.path().to_path_buf());
            tokio::spawn(async move { lander(&p, &home, "").land(1).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        let e = Book::load(home.path()).unwrap().entry(1).cloned().unwrap();
        assert_eq!(e.state, State::Waiting);
        assert!(e.detail.contains("uncommitted changes (README.md)"), "{}", e.detail);
        // The person commits: it lands on top of their commit.
        tgit(p, &["commit", "-qam", "mine"]);
        let r = h.await.unwrap();
        assert!(matches!(r, Landing::Landed { .. }), "{r:?}");
        let log = tgit(p, &["log", "--format=%s", "-3", "main"]);
        assert_eq!(log, "task 1: a.txt\nmine\ninitial\n");
        assert_ne!(tgit(p, &["rev-parse", "main"]), before);
        assert_eq!(std::fs::read_to_string(p.join("README.md")).unwrap(), "# mine, not committed\n");

        // Still dirty after wait_max: it goes back with the reason, and the file is the person's.
        branch_with(p, 2, "b.txt", "b\n");
        write(p, "README.md", "# mine again\n");
        let r = land(&l, 2).await;
        assert!(matches!(&r, Landing::Waited { detail } if detail.contains("waited too long")), "{r:?}");
        assert_eq!(std::fs::read_to_string(p.join("README.md")).unwrap(), "# mine again\n");
    }

    #[tokio::test]
    async fn a_landing_interrupted_after_the_move_is_finished_once_on_resume() {
        let repo = git_repo();
        let p = repo.path();
        let home = tempfile::tempdir().unwrap();
        branch_with(p, 1, "a.txt", "a\n");
        let l = lander(p, home.path(), "");
        l.enqueue(&task(1), "kite/task-1", "s", 1).await.unwrap();
        // As if the daemon died right after moving main: the book says Moving, main has it.
        let tip = tgit(p, &["rev-parse", "kite/task-1"]).trim().to_string();
        tgit(p, &["merge", "-q", "--ff-only", &tip]);
        l.update(1, |e| {
            e.state = State::Moving;
            e.new = Some(tip.clone());
        })
        .unwrap();
        assert_eq!(l.in_flight().unwrap().len(), 1);
        let r = l.land(1).await.unwrap();
        assert_eq!(r, Landing::Landed { commit: tip.clone(), target: "main".into(), verified: false });
        assert_eq!(tgit(p, &["log", "--format=%s", "main"]), "task 1: a.txt\ninitial\n", "landed once");
        assert!(l.in_flight().unwrap().is_empty());
        assert_eq!(Book::load(home.path()).unwrap().total.landed, 1);
    }

    #[tokio::test]
    async fn discard_removes_the_work_only_when_asked_and_not_while_landing() {
        let repo = git_repo();
        let p = repo.path();
        let home = tempfile::tempdir().unwrap();
        branch_with(p, 1, "a.txt", "a\n");
        let l = lander(p, home.path(), "");
        l.enqueue(&task(1), "kite/task-1", "s", 1).await.unwrap();
        let e = l.discard(1).await.unwrap_err();
        assert!(e.to_string().contains("queued in the merge queue"), "{e}");
        l.update(1, |e| e.state = State::Conflict).unwrap();
        assert_eq!(l.discard(1).await.unwrap(), ["branch kite/task-1"]);
        assert!(tgit(p, &["branch", "--list", "kite/*"]).is_empty());
        assert_eq!(Book::load(home.path()).unwrap().entry(1).unwrap().state, State::Discarded);
        assert!(l.discard(1).await.unwrap_err().to_string().contains("no kite worktree or branch"));
    }

    #[tokio::test]
    async fn a_branch_already_on_the_target_lands_as_is_and_a_persons_rebase_is_waited_on() {
        let repo = git_repo();
        let p = repo.path();
        let home = tempfile::tempdir().unwrap();
        branch_with(p, 1, "a.txt", "a\n");
        // main moves on; the agent merged main into its branch itself: it is on top of main.
        write(p, "m.txt", "m\n");
        tgit(p, &["add", "m.txt"]);
        tgit(p, &["commit", "-qm", "main moves"]);
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("wt");
        tgit(p, &["worktree", "add", "-q", &wt.to_string_lossy(), "kite/task-1"]);
        tgit(&wt, &["merge", "-q", "--no-edit", "main"]);
        let tip = tgit(&wt, &["rev-parse", "HEAD"]).trim().to_string();
        tgit(p, &["worktree", "remove", "--force", &wt.to_string_lossy()]);
        let l = lander(p, home.path(), "");
        match land(&l, 1).await {
            Landing::Landed { commit, .. } => assert_eq!(commit, tip, "the agent's merge commit landed unchanged"),
            other => panic!("{other:?}"),
        }

        // The person is in the middle of a rebase in the main checkout: kite waits.
        branch_with(p, 2, "b.txt", "b\n");
        let git_dir = tgit(p, &["rev-parse", "--absolute-git-dir"]).trim().to_string();
        std::fs::create_dir_all(Path::new(&git_dir).join("rebase-merge")).unwrap();
        let r = land(&l, 2).await;
        assert!(matches!(&r, Landing::Waited { detail } if detail.contains("in the middle of a rebase")), "{r:?}");
        std::fs::remove_dir_all(Path::new(&git_dir).join("rebase-merge")).unwrap();
    }

    #[test]
    fn a_corrupt_book_is_an_error_not_a_fresh_start() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("merge")).unwrap();
        std::fs::write(Book::path(home.path()), "{nope").unwrap();
        let e = Book::load(home.path()).unwrap_err().to_string();
        assert!(e.contains("does not parse") && e.contains("move it aside"), "{e}");
    }
}
