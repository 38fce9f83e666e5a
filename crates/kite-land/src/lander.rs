//! The lander: one landing at a time, from the queued entry to the moved target. The book is
//! the coordinator's ([`MergeBook`]); the git work happens here, in kite's merge worktree.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kite_core::{Home, MergeEntry, MergeState, MergeTally};
use kite_git::proc::{self, Exit, Shell};
use kite_git::{git, worktrees};
use kite_proto::ops::{MergeEnqueue, MergeStep};

use crate::{
    short, target_branch, LandError, Landing, MergeBook, MergeConfig, Strategy, CONTEXT_CHARS,
};

/// A step with nothing but a state and what happened.
fn step(task: i64, state: MergeState, detail: String) -> MergeStep {
    MergeStep {
        task,
        state,
        detail,
        base: None,
        new: None,
        verified: None,
        tally: None,
        review: None,
        tests: None,
    }
}

/// The merge queue's worker: lands one entry at a time.
pub struct Lander {
    pub cfg: MergeConfig,
    repo: PathBuf,
    home: Home,
    book: Arc<dyn MergeBook>,
}

impl Lander {
    pub fn new(
        cfg: MergeConfig,
        repo: impl Into<PathBuf>,
        home: impl Into<PathBuf>,
        book: Arc<dyn MergeBook>,
    ) -> Self {
        Lander {
            cfg,
            repo: repo.into(),
            home: Home::new(home.into()),
            book,
        }
    }

    pub fn book(&self) -> &Arc<dyn MergeBook> {
        &self.book
    }

    /// The verify command: configured, else the detected test runner's; `None`: land unverified.
    pub fn verify_command(&self) -> Option<String> {
        self.verify_plan().map(|(command, _)| command)
    }

    /// The verify command and, when it is the detected runner's, how its report is read.
    fn verify_plan(&self) -> Option<(String, Option<kite_testrun::Format>)> {
        match &self.cfg.verify {
            Some(c) if c.trim().is_empty() => None,
            Some(c) => Some((c.clone(), None)),
            None => kite_testrun::detect(&self.repo).map(|r| {
                (
                    r.command.replace(
                        "{report}",
                        &format!("'{}'", self.home.verify_report().display()),
                    ),
                    Some(r.format),
                )
            }),
        }
    }

    async fn step(
        &self,
        task: i64,
        state: MergeState,
        detail: String,
    ) -> Result<MergeEntry, LandError> {
        self.book.step(step(task, state, detail)).await
    }

    /// Puts a finished task in the queue (an entry of an earlier attempt still in flight gives way
    /// to this one). `session` and `token` are the claim the runner holds while it lands.
    pub async fn enqueue(
        &self,
        task: i64,
        branch: &str,
        session: &str,
        token: u64,
    ) -> Result<MergeEntry, LandError> {
        let target = target_branch(&self.repo, &self.cfg).await?;
        self.book
            .enqueue(MergeEnqueue {
                task,
                branch: branch.to_string(),
                target,
                session: session.to_string(),
                token,
            })
            .await
    }

    /// The landing lock: one landing at a time uses the merge worktree, in this process and across
    /// processes on this machine.
    async fn lock(&self) -> Result<LockFile, LandError> {
        let p = self.home.merge_lock();
        let err = |e: std::io::Error| LandError::Book(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(self.home.merge_dir()).map_err(err)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(err)?;
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
            let Some(entry) = self.book.entry(task_id).await? else {
                return Err(LandError::Book(format!(
                    "task {task_id} is not in the merge queue"
                )));
            };
            // Finished already (a resume after the book said so): its outcome, not a new landing.
            if !entry.state.in_flight() {
                return match (entry.state, &entry.new) {
                    (MergeState::Landed, Some(new)) => Ok(Landing::Landed {
                        commit: new.clone(),
                        target: entry.target.clone().unwrap_or_default(),
                        verified: entry.verified,
                    }),
                    (state, _) => Err(LandError::Book(format!(
                        "task {task_id}'s landing already ended: {state}"
                    ))),
                };
            }
            let landing = match self.land_once(&entry).await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    // Waiting on a person: let others through, look again later.
                    drop(lock);
                    if started.elapsed() >= self.cfg.wait_max {
                        let _lock = self.lock().await?;
                        let detail = self
                            .book
                            .entry(task_id)
                            .await?
                            .map(|e| e.detail)
                            .unwrap_or_default();
                        return self
                            .finish(
                                &entry,
                                Landing::Waited {
                                    detail: format!("waited too long: {detail}"),
                                },
                            )
                            .await;
                    }
                    tokio::time::sleep(self.cfg.wait_poll).await;
                    continue;
                }
                Err(e) => {
                    // Landing failed on git itself: the branch and the target are as they were,
                    // and the entry ends (the task goes back; its next attempt queues anew).
                    let _ = self
                        .step(task_id, MergeState::Failed, format!("landing failed: {e}"))
                        .await;
                    return Err(e);
                }
            };
            let out = self.finish(&entry, landing).await;
            drop(lock);
            return out;
        }
    }

    /// Records how a landing ended, and counts it, in one step.
    async fn finish(&self, entry: &MergeEntry, landing: Landing) -> Result<Landing, LandError> {
        let (state, detail, tally) = match &landing {
            Landing::Landed { verified, .. } => {
                let t = if *verified {
                    MergeTally::Landed
                } else {
                    MergeTally::LandedNotVerified
                };
                (MergeState::Landed, landing.reason(), Some(t))
            }
            Landing::Conflict { files, .. } => (
                MergeState::Conflict,
                format!("conflicts in {}", files.join(", ")),
                Some(MergeTally::Conflicted),
            ),
            Landing::Rejected { output, .. } => (
                MergeState::Rejected,
                proc::tail(output, 600).to_string(),
                Some(MergeTally::Rejected),
            ),
            Landing::NoChanges { .. } => (MergeState::NoChanges, landing.reason(), None),
            // Not landed, and not the work's fault: not counted against its template.
            Landing::Waited { detail } => (MergeState::Rejected, detail.clone(), None),
            // A review that could not judge is not the work's fault: not counted against it.
            Landing::Blocked { review } => {
                let tally = (review.outcome == kite_core::ReviewOutcome::Blocked)
                    .then_some(MergeTally::Rejected);
                (
                    MergeState::Blocked,
                    proc::tail(&landing.reason(), 600).to_string(),
                    tally,
                )
            }
        };
        let mut s = MergeStep {
            tally,
            ..step(entry.task_id, state, detail)
        };
        if let Landing::Blocked { review } = &landing {
            s.review = Some(review.clone());
        }
        if let Landing::Landed {
            verified, commit, ..
        } = &landing
        {
            s.verified = Some(*verified);
            s.new = Some(commit.clone());
        }
        self.book.step(s).await?;
        tracing::info!(task = entry.task_id, state = %state, "landing: {}", proc::tail(&landing.reason(), 200));
        Ok(landing)
    }

    /// One try. `Ok(None)`: waiting on a person's uncommitted changes (the book says where).
    async fn land_once(&self, entry: &MergeEntry) -> Result<Option<Landing>, LandError> {
        let repo = &self.repo;
        let target = match &entry.target {
            Some(t) => t.clone(),
            None => target_branch(repo, &self.cfg).await?,
        };
        let remote = self.cfg.remote.clone();
        let target_ref = match &remote {
            // The shared target: what the remote has now is what this landing builds on.
            Some(r) => {
                fetch_target(repo, r, &target).await?;
                format!("refs/remotes/{r}/{target}")
            }
            None => format!("refs/heads/{target}"),
        };
        let head = git(
            repo,
            &["rev-parse", "--verify", &format!("{target_ref}^{{commit}}")],
        )
        .await
        .map_err(|_| {
            LandError::Target(format!(
                "the target branch `{target}` does not exist; set [merge] target in kite.toml"
            ))
        })?;
        let tip = git(
            repo,
            &[
                "rev-parse",
                "--verify",
                &format!("refs/heads/{}^{{commit}}", entry.branch),
            ],
        )
        .await?;

        // Resumed after the target moved but before the book said so: it landed.
        if let (MergeState::Moving, Some(new)) = (entry.state, &entry.new) {
            if git(repo, &["merge-base", "--is-ancestor", new, &head])
                .await
                .is_ok()
            {
                self.after_landing(entry, new).await;
                return Ok(Some(Landing::Landed {
                    commit: new.clone(),
                    target,
                    verified: entry.verified,
                }));
            }
        }
        // Nothing the target lacks: the agent committed nothing (or it all landed already).
        if git(repo, &["merge-base", "--is-ancestor", &tip, &head])
            .await
            .is_ok()
        {
            let wt = worktrees(repo)
                .await?
                .into_iter()
                .find(|w| w.branch.as_deref() == Some(entry.branch.as_str()));
            let uncommitted = match wt {
                Some(w) => kite_git::uncommitted(&w.path).await.unwrap_or_default(),
                None => vec![],
            };
            return Ok(Some(Landing::NoChanges { uncommitted }));
        }

        // A person's checkout of the target that kite may not move now: wait before doing any
        // work (a verify per poll would run the tests every few seconds). A shared target moves
        // on the remote; nobody's checkout here is touched.
        if let Some(why) = self.blocked_here(&target).await? {
            self.step(entry.task_id, MergeState::Waiting, why).await?;
            return Ok(None);
        }

        // The candidate, in kite's own worktree.
        let new = match self.candidate(entry, &target, &head, &tip).await? {
            Ok(new) => new,
            Err(conflict) => return Ok(Some(conflict)),
        };
        // Verify the exact commit that will land, and read what it did to the tests.
        let plan = self.verify_plan();
        let verify = plan.as_ref().map(|(c, _)| c.clone());
        let mut verify_output = String::new();
        let (mut tests, mut run) = (None, None);
        if let Some((cmd, format)) = &plan {
            if let Some(kite_testrun::Format::JunitDirs { dirs }) = format {
                clear_reports(&self.home.merge_worktree(), dirs);
            }
            match self
                .verify(entry.task_id, cmd, &new, &head, &target)
                .await?
            {
                Ok(output) => verify_output = output,
                Err(rejected) => return Ok(Some(rejected)),
            }
            let report_text = tokio::fs::read_to_string(self.home.verify_report())
                .await
                .ok();
            let read = kite_testrun::delta::read_verify(
                format.as_ref(),
                &verify_output,
                report_text.as_deref(),
                &self.home.merge_worktree(),
            );
            let (d, r) = crate::baseline::delta(
                &self.repo,
                &self.home.merge_dir(),
                &target,
                &head,
                cmd,
                read,
            )
            .await;
            tracing::info!(task = entry.task_id, "landing: tests: {}", d.describe());
            (tests, run) = (Some(d), r);
        }
        // The review gate reads what verify passed.
        let mut review = None;
        if self.cfg.review {
            let r = self
                .review(
                    entry,
                    &new,
                    &head,
                    &target,
                    verify.as_deref(),
                    &verify_output,
                )
                .await?;
            if r.outcome != kite_core::ReviewOutcome::Passed {
                return Ok(Some(Landing::Blocked { review: r }));
            }
            review = Some(r);
        }

        // The book's record of the move, before it happens (a restart resumes from it).
        let verified = verify.is_some();
        let moving = |detail: String| MergeStep {
            base: Some(head.clone()),
            new: Some(new.clone()),
            verified: Some(verified),
            review,
            tests,
            ..step(entry.task_id, MergeState::Moving, detail)
        };

        // A shared target: one compare-and-swap push of the verified commit.
        if let Some(r) = &remote {
            self.book.step(moving(format!("pushing {} to {target} on {r}", short(&new)))).await?;
            // The task's branch goes to the remote too (kite's own name: forced).
            if let Err(e) = git(repo, &["push", "-q", "--force", r, &format!("refs/heads/{0}:refs/heads/{0}", entry.branch)]).await {
                tracing::warn!(task = entry.task_id, "landing: cannot push {} to {r}: {e}", entry.branch);
            }
            let lease = format!("--force-with-lease=refs/heads/{target}:{head}");
            match git(repo, &["push", "-q", &lease, r, &format!("{new}:refs/heads/{target}")]).await {
                Ok(_) => {
                    let _ = git(repo, &["update-ref", &target_ref, &new]).await;
                    self.after_landing(entry, &new).await;
                    crate::baseline::keep(&self.home.merge_dir(), &target, &new, run).await;
                    return Ok(Some(Landing::Landed { commit: new, target, verified }));
                }
                Err(e) => {
                    fetch_target(repo, r, &target).await?;
                    let now = git(repo, &["rev-parse", &target_ref]).await?;
                    if now == head {
                        // Not a race: the remote refused the push itself.
                        return Err(LandError::Target(format!("cannot push to {target} on {r}: {e}")));
                    }
                    // Another landing moved the shared target first: land again on top of it.
                    tracing::info!(task = entry.task_id, "landing: {target} on {r} moved meanwhile; landing again on its new head");
                    self.step(entry.task_id, MergeState::Queued, format!("{target} on {r} moved while landing; landing again on its new head")).await?;
                    return Box::pin(self.land_once(&MergeEntry { state: MergeState::Queued, ..entry.clone() })).await;
                }
            }
        }

        // Move the target, the way a person would (and not while they are in the middle of it:
        // they may have started changing files during the verify).
        if let Some(why) = self.blocked(&target).await? {
            self.step(entry.task_id, MergeState::Waiting, why).await?;
            return Ok(None);
        }
        let holder = worktrees(repo)
            .await?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(target.as_str()));
        self.book.step(moving(format!("moving {target} to {}", short(&new)))).await?;
        let moved = match &holder {
            Some(w) => {
                git(
                    &w.path,
                    &["merge", "--ff-only", "--no-overwrite-ignore", "-q", &new],
                )
                .await
            }
            None => {
                git(
                    repo,
                    &[
                        "update-ref",
                        "-m",
                        &format!("kite: land task {}", entry.task_id),
                        &target_ref,
                        &new,
                        &head,
                    ],
                )
                .await
            }
        };
        let now = git(repo, &["rev-parse", &target_ref]).await?;
        if let (Err(e), true) = (&moved, now == head) {
            // git refused to move the person's checkout (an untracked file in the way, say).
            let detail =
                format!("waiting: git would not fast-forward {target} in its worktree: {e}");
            self.step(entry.task_id, MergeState::Waiting, detail)
                .await?;
            return Ok(None);
        }
        if now != new {
            // Someone moved the target meanwhile: verify again against the new head.
            tracing::info!(
                task = entry.task_id,
                "landing: {target} moved meanwhile; trying again on the new head"
            );
            self.step(
                entry.task_id,
                MergeState::Queued,
                format!("{target} moved while landing; landing again on its new head"),
            )
            .await?;
            return Box::pin(self.land_once(&MergeEntry {
                state: MergeState::Queued,
                ..entry.clone()
            }))
            .await;
        }
        self.after_landing(entry, &new).await;
        crate::baseline::keep(&self.home.merge_dir(), &target, &new, run).await;
        Ok(Some(Landing::Landed {
            commit: new,
            target,
            verified,
        }))
    }

    /// The candidate commit: the task's branch rebased (or merged) onto the target's `head` in
    /// kite's merge worktree, every commit carrying the `Kite-Task` trailer. `Ok(Err(..))`: it
    /// conflicts, with the files and hunks for the next attempt.
    async fn candidate(
        &self,
        entry: &MergeEntry,
        target: &str,
        head: &str,
        tip: &str,
    ) -> Result<Result<String, Landing>, LandError> {
        let (repo, head, tip) = (&self.repo, head.to_string(), tip.to_string());
        let lw = self.home.merge_worktree();
        if !lw.join(".git").exists() {
            // `-f` also takes over a registered path that is missing; no `worktree prune`, which
            // would forget a person's worktree that is only unmounted.
            std::fs::create_dir_all(self.home.merge_dir())
                .map_err(|e| LandError::Book(format!("{}: {e}", lw.display())))?;
            let _turn = kite_git::worktree::turn().await;
            git(
                repo,
                &[
                    "worktree",
                    "add",
                    "--detach",
                    "-f",
                    &lw.to_string_lossy(),
                    &head,
                ],
            )
            .await?;
        }
        // A rebase or merge a killed daemon left half done.
        let _ = git(&lw, &["rebase", "--abort"]).await;
        let _ = git(&lw, &["merge", "--abort"]).await;
        let mut ident: Vec<String> = vec![
            "-c".into(),
            "commit.gpgsign=false".into(),
            "-c".into(),
            "rebase.updateRefs=false".into(),
        ];
        if !kite_git::has_identity(repo).await {
            ident.extend([
                "-c".into(),
                "user.name=kite".into(),
                "-c".into(),
                "user.email=kite@localhost".into(),
            ]);
        }
        let with_ident = |args: &[&str]| -> Vec<String> {
            ident
                .iter()
                .cloned()
                .chain(args.iter().map(|s| s.to_string()))
                .collect()
        };
        let run = |args: Vec<String>| {
            let lw = lw.clone();
            async move {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                git(&lw, &a).await
            }
        };
        // Already on top of the target: it lands as it is (a merge commit an agent made to
        // resolve a conflict stays, instead of being flattened into the same conflict again).
        let on_top = git(repo, &["merge-base", "--is-ancestor", &head, &tip])
            .await
            .is_ok();
        // Every commit kite lands carries `Kite-Task: N`, so what a task did can be read from git
        // alone. The commits are replayed with the trailer amended in (a commit that has it
        // already keeps one); a branch with merge commits in it lands as it is.
        let trailer = kite_git::trailer(entry.task_id);
        let amend = format!("git -c commit.gpgsign=false commit -q --amend --no-edit --no-verify --trailer '{trailer}'");
        let base = git(repo, &["merge-base", &head, &tip]).await?;
        let linear = git(
            repo,
            &["rev-list", "--merges", "--count", &format!("{base}..{tip}")],
        )
        .await
        .map(|n| n.trim() == "0")
        .unwrap_or(false);
        let applied = match self.cfg.strategy {
            _ if on_top => {
                git(&lw, &["checkout", "--detach", "-f", &tip]).await?;
                git(&lw, &["clean", "-fdq"]).await?;
                if linear {
                    run(with_ident(&[
                        "rebase",
                        "-q",
                        "--force-rebase",
                        "--no-autosquash",
                        "--exec",
                        &amend,
                        &head,
                    ]))
                    .await
                } else {
                    Ok(String::new())
                }
            }
            Strategy::Rebase if linear => {
                git(&lw, &["checkout", "--detach", "-f", &tip]).await?;
                git(&lw, &["clean", "-fdq"]).await?;
                run(with_ident(&[
                    "rebase",
                    "-q",
                    "--no-autosquash",
                    "--exec",
                    &amend,
                    &head,
                ]))
                .await
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
                    run(with_ident(&[
                        "rebase",
                        "-q",
                        "--force-rebase",
                        "--no-autosquash",
                        "--exec",
                        &amend,
                        &base,
                    ]))
                    .await?;
                    tip = git(&lw, &["rev-parse", "HEAD"]).await?;
                }
                git(&lw, &["checkout", "--detach", "-f", &head]).await?;
                git(&lw, &["clean", "-fdq"]).await?;
                let msg = format!(
                    "Merge {} (kite task {}): {}\n\n{trailer}",
                    entry.branch, entry.task_id, entry.title
                );
                run(with_ident(&[
                    "merge",
                    "--no-ff",
                    "--no-edit",
                    "-m",
                    &msg,
                    &tip,
                ]))
                .await
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
                return Err(e.into());
            }
            let context = proc::tail(&hunks, CONTEXT_CHARS).to_string();
            return Ok(Err(Landing::Conflict {
                target: target.to_string(),
                files,
                context,
            }));
        }
        kite_testrun::link_installed(repo, &lw).await;
        Ok(Ok(git(&lw, &["rev-parse", "HEAD"]).await?))
    }

    /// Runs the verify command on the candidate: its output when it passed, the rejection when not.
    async fn verify(
        &self,
        task_id: i64,
        cmd: &str,
        new: &str,
        head: &str,
        target: &str,
    ) -> Result<Result<String, Landing>, LandError> {
        let lw = self.home.merge_worktree();
        let detail = format!(
            "running `{cmd}` on {} (onto {target} at {})",
            short(new),
            short(head)
        );
        self.book
            .step(MergeStep {
                base: Some(head.to_string()),
                ..step(task_id, MergeState::Verifying, detail)
            })
            .await?;
        // A report an earlier run left is never read as this one's.
        let _ = tokio::fs::remove_file(self.home.verify_report()).await;
        let o = proc::run(Shell {
            command: proc::Program::Sh(&format!("{cmd} 2>&1")),
            cwd: &lw,
            env: vec![
                ("KITE_TASK_ID".into(), task_id.to_string()),
                ("CI".into(), "1".into()),
            ],
            stdin: None,
            timeout: Some(self.cfg.verify_timeout),
            cap: 1 << 20,
        })
        .await
        .map_err(|e| {
            LandError::Git(kite_git::GitError {
                args: cmd.to_string(),
                message: format!("cannot run: {e}"),
            })
        })?;
        if o.exit != Exit::Code(0) {
            let why = if o.exit == Exit::TimedOut {
                "timed out".to_string()
            } else {
                o.exit.to_string()
            };
            let output = format!("({why})\n{}", proc::tail(o.stdout.trim(), CONTEXT_CHARS));
            return Ok(Err(Landing::Rejected {
                command: cmd.to_string(),
                output,
            }));
        }
        Ok(Ok(o.stdout))
    }

    /// The review gate on the candidate `new` (checked out in kite's merge worktree).
    async fn review(
        &self,
        entry: &MergeEntry,
        new: &str,
        head: &str,
        target: &str,
        verify: Option<&str>,
        verify_output: &str,
    ) -> Result<kite_core::Review, LandError> {
        self.step(
            entry.task_id,
            MergeState::Verifying,
            format!(
                "reviewing {} (onto {target} at {})",
                short(new),
                short(head)
            ),
        )
        .await?;
        let diff = git(
            &self.repo,
            &["diff", "--no-color", "--no-ext-diff", head, new],
        )
        .await?;
        let template = self
            .cfg
            .review_prompt
            .as_deref()
            .unwrap_or(crate::review::PROMPT);
        let body = self.book.task_body(entry.task_id).await.unwrap_or_default();
        let shown = crate::review::Shown {
            task_id: entry.task_id,
            title: &entry.title,
            body: &body,
            target,
            diff: &diff,
            verify_command: verify,
            verify_output,
        };
        let review = match crate::review::render(template, &shown) {
            Ok(prompt) => {
                let (review, cost) =
                    crate::review::review(&self.cfg, &self.home.merge_worktree(), &prompt).await;
                if cost.usd > 0.0 || cost.usage.total() > 0 {
                    self.book.record_review_cost(entry, &cost).await;
                }
                review
            }
            Err(e) => crate::review::failed(e, &Default::default()),
        };
        tracing::info!(task = entry.task_id, outcome = ?review.outcome, findings = %crate::review::tally(&review.findings), "review gate");
        Ok(review)
    }

    /// Why the target may not move now, if it may not: it is checked out in a worktree with
    /// uncommitted changes to tracked files, or the main worktree is in the middle of a rebase,
    /// a merge or a bisect (its HEAD may be detached from the target meanwhile).
    async fn blocked(&self, target: &str) -> Result<Option<String>, LandError> {
        let all = worktrees(&self.repo).await?;
        if let Some(w) = all.iter().find(|w| w.branch.as_deref() == Some(target)) {
            let dirty = kite_git::changed_files(&w.path, false).await?;
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
                let p = git(
                    &main.path,
                    &["rev-parse", "--path-format=absolute", "--git-path", marker],
                )
                .await?;
                if Path::new(&p).exists() {
                    let what = marker
                        .split(['-', '_'])
                        .next()
                        .unwrap_or(marker)
                        .to_lowercase();
                    return Ok(Some(format!(
                        "waiting: {} is in the middle of a {what}; kite lands once it is finished",
                        main.path.display()
                    )));
                }
            }
        }
        Ok(None)
    }

    /// The task branch now points at what landed, so its commits are on the target and removing
    /// it loses nothing. When the branch is checked out in its task's worktree (kite's, not a person's), it moves
    /// there with `reset --keep`, which keeps anything uncommitted (or refuses, and the branch
    /// stays as it was, listed by `kite worktrees`).
    async fn after_landing(&self, entry: &MergeEntry, new: &str) {
        let r = format!("refs/heads/{}", entry.branch);
        let wt = worktrees(&self.repo).await.ok().and_then(|v| {
            v.into_iter()
                .find(|w| w.branch.as_deref() == Some(entry.branch.as_str()))
        });
        let moved = match wt {
            Some(w) => git(&w.path, &["reset", "-q", "--keep", new]).await,
            None => git(&self.repo, &["update-ref", &r, new]).await,
        };
        if let Err(e) = moved {
            tracing::warn!(
                task = entry.task_id,
                "landing: {} stays where it was (not moved to the landed commit): {e}",
                entry.branch
            );
        }
    }

    /// [`Lander::blocked`], for a local target only.
    async fn blocked_here(&self, target: &str) -> Result<Option<String>, LandError> {
        match self.cfg.remote {
            Some(_) => Ok(None),
            None => self.blocked(target).await,
        }
    }

    /// Entries a restart must finish.
    pub async fn in_flight(&self) -> Result<Vec<MergeEntry>, LandError> {
        Ok(self
            .book
            .list(0)
            .await?
            .entries
            .into_iter()
            .filter(|e| e.state.in_flight())
            .collect())
    }
}

struct LockFile(#[allow(dead_code)] std::fs::File);

/// Removes the report directories of a JUnit-writing runner (surefire, gradle) from kite's merge
/// worktree, at its root and one module down, before a verify: a checkout keeps ignored files, and
/// an earlier landing's XML would be read as this run's (a deleted test class still passing).
/// Brings the remote's target branch into `refs/remotes/REMOTE/TARGET`.
async fn fetch_target(repo: &Path, remote: &str, target: &str) -> Result<(), LandError> {
    git(repo, &["fetch", "-q", remote, &format!("+refs/heads/{target}:refs/remotes/{remote}/{target}")])
        .await
        .map(|_| ())
        .map_err(|e| LandError::Target(format!("cannot fetch {target} from {remote}: {e}")))
}

fn clear_reports(wt: &Path, dirs: &[String]) {
    let mut roots = vec![wt.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(wt) {
        roots.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.ends_with(".git")),
        );
    }
    for root in roots {
        for d in dirs {
            let p = root.join(d);
            if p.is_dir() {
                if let Err(e) = std::fs::remove_dir_all(&p) {
                    tracing::warn!(
                        "landing: cannot clear the old test reports in {}: {e}",
                        p.display()
                    );
                }
            }
        }
    }
}
