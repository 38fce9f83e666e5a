//! The runner against real git repositories and fake agent scripts: success, transient failures
//! with backoff, hangs, crashes, permanent failures, file-overlap exclusion, worktree isolation.

use super::*;
use kite_strategy::memqueue::{snap, MemQueue};
use kite_git::fixture::{git, git_repo, write};

struct Fixture {
    repo: tempfile::TempDir,
    home: tempfile::TempDir,
    q: MemQueue,
    book: Arc<kite_land::MemBook>,
}

impl Fixture {
    fn new() -> Self {
        Fixture { repo: git_repo(), home: tempfile::tempdir().unwrap(), q: MemQueue::new(0), book: Arc::default() }
    }

    fn task(&self, id: i64, files: &[&str]) {
        let mut t = snap(id, &format!("task {id}"));
        t.body = format!("do thing {id}");
        t.files = files.iter().map(|s| s.to_string()).collect();
        self.q.insert(t);
    }

    /// A runner whose agent is `script` (a shell snippet).
    fn runner(&self, script: &str, tweak: impl FnOnce(&mut RunnerConfig)) -> Arc<Runner> {
        let agent = self.home.path().join("agent.sh");
        std::fs::write(&agent, script).unwrap();
        let mut cfg = RunnerConfig {
            command: Some(format!("sh {}", agent.display())),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
            max_attempts: 3,
            ..RunnerConfig::default()
        };
        // These tests pin the runner's own rules (retries, worktrees, overlaps) with agents that
        // mostly commit nothing; landing has its tests below and in kite-land.
        cfg.merge.land = false;
        tweak(&mut cfg);
        Runner::new(cfg, self.repo.path(), self.home.path(), Arc::new(self.q.clone()), self.book.clone())
    }

    fn failures(&self) -> Vec<(i64, String, bool)> {
        self.q.with(|s| s.failures.clone())
    }
}

/// Counts attempts per task in KITE_HOME: `$n` is this attempt's number (1, 2, ...).
const COUNT: &str = r#"f="$KITE_HOME/count-$KITE_TASK_ID"; n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 )); echo $n > "$f"
"#;

#[tokio::test]
async fn success_marks_done_with_stdout_tail_and_env() {
    let f = Fixture::new();
    f.task(1, &["src/a.rs"]);
    let r = f.runner(
        r#"read first
echo "noise"
echo "task=$KITE_TASK_ID session=$KITE_SESSION_ID home=$KITE_HOME stdin=$first"
printf '%s' "$KITE_TASK_PROMPT" | grep -q 'do thing 1' && echo prompt-ok
pwd
"#,
        |_| {},
    );
    let rep = r.spawn(1).await.unwrap().await.unwrap();
    let RunOutcome::Done { result } = &rep.outcome else { panic!("{rep:?}") };
    let home = f.home.path().display().to_string();
    assert!(result.contains(&format!("task=1 session=runner-task-1-1 home={home} stdin=# task 1")), "{result}");
    assert!(result.contains("prompt-ok"));
    let wt = rep.worktree.clone().unwrap();
    assert!(result.trim_end().ends_with(&wt.dir.display().to_string()), "ran in the worktree: {result}");
    assert_eq!(f.q.task(1).status, TaskStatus::Done);
    assert_eq!(f.q.with(|s| s.results[0].1.clone()), *result);
    // Nothing in it to lose (no commit, nothing uncommitted): the worktree and branch are gone.
    assert!(!rep.worktree_kept);
    assert!(!wt.dir.exists());
    assert!(git(f.repo.path(), &["branch", "--list", "kite/task-1"]).is_empty());
    assert!(r.running().is_empty());
}

#[tokio::test]
async fn transient_failure_is_retried_with_backoff_then_succeeds() {
    let f = Fixture::new();
    f.task(1, &[]);
    let r = f.runner(&format!("{COUNT}if [ $n -lt 3 ]; then echo busy >&2; exit 75; fi\necho ok-$n\n"), |_| {});
    let start = Instant::now();
    let rep = r.spawn(1).await.unwrap().await.unwrap();
    assert_eq!(rep.outcome, RunOutcome::Done { result: "ok-3".into() });
    assert_eq!(rep.attempts.len(), 3);
    assert!(rep.attempts[0].transient && rep.attempts[0].exit.contains("exit code 75") && rep.attempts[0].exit.contains("busy"));
    // Backoff grows from base (50 ms, jittered to 25..50) and stays under the cap.
    let b1 = rep.attempts[0].backoff_ms.unwrap();
    let b2 = rep.attempts[1].backoff_ms.unwrap();
    assert!((25..=50).contains(&b1), "{b1}");
    assert!((50..=100).contains(&b2), "{b2}");
    assert!(start.elapsed() >= Duration::from_millis(b1 + b2));
    // Each attempt is its own session; the queue saw two transient failures.
    assert_ne!(rep.attempts[0].session_id, rep.attempts[1].session_id);
    assert_eq!(f.failures().iter().filter(|x| x.2).count(), 2);
    assert_eq!(f.q.task(1).attempts, 2);
    assert_eq!(f.q.task(1).status, TaskStatus::Done);
}

#[tokio::test]
async fn transient_failures_give_up_after_max_attempts_with_last_error() {
    let f = Fixture::new();
    f.task(1, &[]);
    let r = f.runner(&format!("{COUNT}echo \"try $n\" >&2; exit 75\n"), |c| c.max_attempts = 2);
    let rep = r.spawn(1).await.unwrap().await.unwrap();
    let RunOutcome::Failed { error } = &rep.outcome else { panic!("{rep:?}") };
    assert!(error.contains("exit code 75") && error.contains("try 2") && error.contains("attempt 2 of 2"), "{error}");
    assert_eq!(f.q.task(1).status, TaskStatus::Failed);
    let fails = f.failures();
    assert_eq!(fails.iter().map(|x| x.2).collect::<Vec<_>>(), vec![true, false]);
}

#[tokio::test]
async fn other_exit_codes_fail_at_once() {
    let f = Fixture::new();
    f.task(1, &[]);
    let r = f.runner("echo 'syntax error' >&2; exit 3\n", |_| {});
    let rep = r.spawn(1).await.unwrap().await.unwrap();
    let RunOutcome::Failed { error } = &rep.outcome else { panic!("{rep:?}") };
    assert!(error.starts_with("exit code 3") && error.contains("syntax error"), "{error}");
    assert_eq!(rep.attempts.len(), 1);
    assert_eq!(f.q.task(1).status, TaskStatus::Failed);
}

#[tokio::test]
async fn hanging_agent_times_out_and_is_retried() {
    let f = Fixture::new();
    f.task(1, &[]);
    let r = f.runner(&format!("{COUNT}if [ $n -eq 1 ]; then sleep 60; fi\necho recovered\n"), |c| {
        c.timeout = Duration::from_millis(500)
    });
    let start = Instant::now();
    let rep = r.spawn(1).await.unwrap().await.unwrap();
    assert_eq!(rep.outcome, RunOutcome::Done { result: "recovered".into() });
    assert!(rep.attempts[0].transient && rep.attempts[0].exit.contains("timed out"), "{:?}", rep.attempts);
    assert!(start.elapsed() < Duration::from_secs(30), "the hung agent was killed");
}

#[tokio::test]
async fn crashing_agent_is_retried_then_fails() {
    let f = Fixture::new();
    f.task(1, &[]);
    let r = f.runner("kill -9 $$\n", |c| c.max_attempts = 2);
    let rep = r.spawn(1).await.unwrap().await.unwrap();
    let RunOutcome::Failed { error } = &rep.outcome else { panic!("{rep:?}") };
    assert!(error.contains("killed by signal 9"), "{error}");
    assert_eq!(rep.attempts.len(), 2);
    assert!(rep.attempts.iter().all(|a| a.transient));

    // And a crash followed by success is just a retry.
    f.task(2, &[]);
    let r = f.runner(&format!("{COUNT}if [ $n -eq 1 ]; then kill -9 $$; fi\necho fine\n"), |_| {});
    let rep = r.spawn(2).await.unwrap().await.unwrap();
    assert_eq!(rep.outcome, RunOutcome::Done { result: "fine".into() });
}

/// An agent that waits until `$KITE_HOME/go` exists, so tests control when runs end.
const GATED: &str = r#"while [ ! -f "$KITE_HOME/go" ]; do sleep 0.05; done
echo "finished $KITE_TASK_ID"
"#;

#[tokio::test]
async fn overlapping_files_never_run_together() {
    let f = Fixture::new();
    f.task(1, &["src/a.rs", "README.md"]);
    f.task(2, &["src"]);
    f.task(3, &["docs/x.md"]);
    f.task(4, &[]);
    let r = f.runner(GATED, |c| c.max_agents = 3);
    let started = r.fill().await.unwrap();
    let ids: Vec<i64> = started.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![1, 3, 4], "task 2 overlaps task 1");
    assert_eq!(r.running(), vec![1, 3, 4]);
    // Explicit spawn refuses the overlap too, naming the other task and the files.
    let err = r.spawn(2).await.unwrap_err();
    assert_eq!(err, RunnerError::Overlap { task: 2, other: 1, files: vec!["src".into()] });
    // Full: nothing more starts.
    assert!(r.fill().await.unwrap().is_empty());
    std::fs::write(f.home.path().join("go"), "").unwrap();
    for (_, h) in started {
        let out = h.await.unwrap().outcome;
        assert!(matches!(out, RunOutcome::Done { .. }), "{out:?}");
    }
    let started = r.fill().await.unwrap();
    assert_eq!(started.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![2]);
    for (_, h) in started {
        h.await.unwrap();
    }
    assert!((1..=4).all(|id| f.q.task(id).status == TaskStatus::Done));
}

#[tokio::test]
async fn runner_starts_nothing_on_its_own_by_default_and_respects_dependencies() {
    let f = Fixture::new();
    f.task(1, &[]);
    let mut t2 = snap(2, "after 1");
    t2.depends_on = vec![1];
    f.q.insert(t2);
    let r = f.runner("echo done\n", |_| {});
    assert_eq!(r.config().max_agents, 0);
    assert!(r.fill().await.unwrap().is_empty());

    let r = f.runner("echo done\n", |c| c.max_agents = 5);
    let started = r.fill().await.unwrap();
    assert_eq!(started.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1], "2 waits for 1");
    for (_, h) in started {
        h.await.unwrap();
    }
    let started = r.fill().await.unwrap();
    assert_eq!(started.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![2]);
    for (_, h) in started {
        h.await.unwrap();
    }
    assert!(matches!(r.spawn(2).await.unwrap_err(), RunnerError::NotPending { id: 2, status: TaskStatus::Done }));
    assert!(matches!(r.spawn(99).await.unwrap_err(), RunnerError::NotFound(99)));
}

#[tokio::test]
async fn each_task_works_in_its_own_worktree_and_branch() {
    let f = Fixture::new();
    f.task(1, &["one.txt"]);
    f.task(2, &["two.txt"]);
    let r = f.runner(
        r#"echo "from $KITE_TASK_ID" > "out-$KITE_TASK_ID.txt"
echo "shared by $KITE_TASK_ID" > shared.txt
git add . && git -c user.email=a@b -c user.name=agent commit -q -m "task $KITE_TASK_ID"
git rev-parse --abbrev-ref HEAD
ls
"#,
        |c| {
            c.max_agents = 2;
            c.keep_worktrees = true;
        },
    );
    let started = r.fill().await.unwrap();
    assert_eq!(started.len(), 2);
    let mut reports = vec![];
    for (_, h) in started {
        reports.push(h.await.unwrap());
    }
    let main = f.repo.path();
    for rep in &reports {
        let id = rep.task_id;
        let RunOutcome::Done { result } = &rep.outcome else { panic!("{rep:?}") };
        assert!(result.contains(&format!("kite/task-{id}")), "{result}");
        // Each worktree sees only its own file.
        let other = 3 - id;
        assert!(!result.contains(&format!("out-{other}.txt")), "{result}");
        let wt = rep.worktree.as_ref().unwrap();
        assert!(rep.worktree_kept && wt.dir.join(format!("out-{id}.txt")).exists());
        assert_eq!(std::fs::read_to_string(wt.dir.join("shared.txt")).unwrap(), format!("shared by {id}\n"));
        // The commit is on the task's branch.
        let shown = git(main, &["show", &format!("kite/task-{id}:out-{id}.txt")]);
        assert_eq!(shown, format!("from {id}\n"));
    }
    // The main tree saw none of it.
    assert!(!main.join("out-1.txt").exists() && !main.join("shared.txt").exists());
    assert_eq!(git(main, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "main");
    assert_eq!(git(main, &["status", "--porcelain"]).trim(), "");
    assert_eq!(git(main, &["log", "--format=%s"]).trim(), "initial");
}

#[tokio::test]
async fn a_retry_reuses_the_worktree_and_keeps_committed_work() {
    let f = Fixture::new();
    f.task(1, &[]);
    let r = f.runner(
        &format!(
            "{COUNT}if [ $n -eq 1 ]; then echo partial > part.txt; exit 75; fi\ncat part.txt\n"
        ),
        |_| {},
    );
    let rep = r.spawn(1).await.unwrap().await.unwrap();
    assert_eq!(rep.outcome, RunOutcome::Done { result: "partial".into() });
}

#[test]
fn backoff_grows_and_is_capped() {
    let cfg = RunnerConfig {
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(60),
        ..RunnerConfig::default()
    };
    for _ in 0..50 {
        let b1 = backoff(&cfg, 1);
        assert!(b1 >= Duration::from_secs(5) && b1 <= Duration::from_secs(10));
        let b3 = backoff(&cfg, 3);
        assert!(b3 >= Duration::from_secs(20) && b3 <= Duration::from_secs(40));
        let b9 = backoff(&cfg, 9);
        assert!(b9 >= Duration::from_secs(30) && b9 <= Duration::from_secs(60));
        assert!(backoff(&cfg, 100) <= Duration::from_secs(60));
    }
    let _ = write;
}

#[tokio::test]
async fn run_loop_works_the_queue_until_shutdown() {
    let f = Fixture::new();
    for id in 1..=3 {
        f.task(id, &[]);
    }
    let r = f.runner("echo ok\n", |c| {
        c.max_agents = 2;
        c.poll = Duration::from_millis(20);
        c.heartbeat = Duration::ZERO;
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(r.clone().run(async move {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(1..=3).all(|id| f.q.task(id).status == TaskStatus::Done) {
        assert!(Instant::now() < deadline, "tasks not done in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(()).unwrap();
    h.await.unwrap();
    // The last run may still be removing its worktree when shutdown aborts it; its slot goes
    // with it either way.
    while !r.running().is_empty() {
        assert!(Instant::now() < deadline, "slots not released: {:?}", r.running());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_kills_running_agents_and_frees_their_slots() {
    let f = Fixture::new();
    f.task(1, &["a"]);
    let marker = f.home.path().join("survived");
    let r = f.runner(&format!("sleep 2; touch {}\n", marker.display()), |c| {
        c.max_agents = 1;
        c.poll = Duration::from_millis(20);
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(r.clone().run(async move {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.q.task(1).status != TaskStatus::Active {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(()).unwrap();
    h.await.unwrap();
    while !r.running().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!marker.exists(), "the agent was killed at shutdown");
    // Its claim is left for the coordinator's reaper (the session stops heart-beating).
    assert_eq!(f.q.task(1).status, TaskStatus::Active);
}

/// With landing on: two tasks on different files both land on main; two that edit the same line
/// at once conflict, the one that lands second goes back with the conflict as its next prompt's
/// context, and its next attempt (which redoes the change on the new main) lands. main's checkout
/// is fast-forwarded, never reset.
#[tokio::test]
async fn finished_work_lands_on_main_and_a_conflict_goes_back_with_its_context() {
    let f = Fixture::new();
    for id in 1..=4 {
        f.task(id, &[]);
    }
    let r = f.runner(
        r#"set -e
g() { git -c user.email=a@b -c user.name=agent "$@"; }
case "$KITE_TASK_ID" in
  1) echo one > one.txt ;;
  2) echo two > two.txt ;;
  *) if grep -q "did not land"; then
       # Told about the conflict: redo the change on top of what landed.
       git reset -q --hard main
       echo "from $KITE_TASK_ID" >> README.md
     else
       sleep 0.3
       echo "README by $KITE_TASK_ID" > README.md
     fi ;;
esac
g add -A && g commit -qm "task $KITE_TASK_ID"
echo ok
"#,
        |c| {
            c.merge.land = true;
            c.merge.verify = Some("test -f README.md".into());
        },
    );
    let mut reports = vec![];
    for id in [1, 2] {
        reports.push(r.spawn(id).await.unwrap().await.unwrap());
    }
    // 3 and 4 start from the same main and edit the same line.
    let (h3, h4) = (r.spawn(3).await.unwrap(), r.spawn(4).await.unwrap());
    reports.push(h3.await.unwrap());
    reports.push(h4.await.unwrap());
    let main = f.repo.path();
    for rep in &reports {
        assert!(matches!(rep.outcome, RunOutcome::Done { .. }), "{rep:?}");
        assert!(matches!(rep.landing, Some(Landing::Landed { verified: true, .. })), "{rep:?}");
        assert!(!rep.worktree_kept, "landed work leaves no worktree: {rep:?}");
    }
    let (first, second) = if reports[2].attempts.len() == 1 { (3, 4) } else { (4, 3) };
    let again = &reports[(second - 1) as usize];
    assert_eq!(again.attempts.len(), 2, "{again:?}");
    assert!(again.attempts[0].exit.contains("conflicts with main"), "{:?}", again.attempts[0]);
    assert!(again.attempts[0].exit.contains("README.md"), "{:?}", again.attempts[0]);
    let log = git(main, &["log", "--format=%s", "main"]);
    for id in 1..=4 {
        assert!(log.contains(&format!("task {id}")), "{log}");
    }
    assert_eq!(std::fs::read_to_string(main.join("README.md")).unwrap(), format!("README by {first}\nfrom {second}\n"));
    assert!(main.join("one.txt").exists() && main.join("two.txt").exists());
    assert_eq!(git(main, &["status", "--porcelain"]), "");
    assert!(git(main, &["branch", "--list", "kite/*"]).trim().is_empty(), "landed branches are removed");

    // An agent that commits nothing is not done.
    f.task(5, &[]);
    let r = f.runner("echo did nothing", |c| c.merge.land = true);
    let rep = r.spawn(5).await.unwrap().await.unwrap();
    assert_eq!(rep.outcome, RunOutcome::Failed { error: "the agent exited 0 but committed nothing".into() });
    // Unless its template says a change is not expected: then it is done with "no changes".
    write(f.repo.path(), "prompts/check.md.tera", "+++\nexpects_change = false\ntitle = \"check\"\n+++\nLook.\n");
    let mut t = snap(7, "check");
    t.template = Some("check".into());
    f.q.insert(t);
    let rep = r.spawn(7).await.unwrap().await.unwrap();
    let RunOutcome::Done { result } = &rep.outcome else { panic!("{rep:?}") };
    assert!(result.starts_with("no changes (its template expects none)"), "{result}");
    // A project whose templates live elsewhere ([sched] prompts_dir) is read there.
    write(f.repo.path(), "agents/prompts/look.md.tera", "+++\nexpects_change = false\ntitle = \"look\"\n+++\nLook.\n");
    let mut t = snap(9, "look");
    t.template = Some("look".into());
    f.q.insert(t);
    let r2 = f.runner("echo did nothing", |c| {
        c.merge.land = true;
        c.templates = ("agents/prompts".into(), false);
    });
    let rep = r2.spawn(9).await.unwrap().await.unwrap();
    assert!(matches!(&rep.outcome, RunOutcome::Done { result } if result.starts_with("no changes")), "{rep:?}");
    // One that finishes with its work uncommitted gets it committed by kite (the task's title,
    // the trailer) and landed: nothing finished is lost.
    f.task(6, &[]);
    let r = f.runner("echo draft > draft.txt", |c| c.merge.land = true);
    let rep = r.spawn(6).await.unwrap().await.unwrap();
    assert!(matches!(rep.outcome, RunOutcome::Done { .. }), "{rep:?}");
    assert_eq!(std::fs::read_to_string(main.join("draft.txt")).unwrap(), "draft\n");
    let msg = git(main, &["log", "-1", "--format=%s%n%(trailers:key=Kite-Task,valueonly)", "main"]);
    assert_eq!(msg.trim(), "task 6\n6", "{msg}");
    // One that fails leaves its uncommitted work where it was, in its kept worktree.
    f.task(8, &[]);
    let r = f.runner("echo half > half.txt; exit 2", |c| c.merge.land = true);
    let rep = r.spawn(8).await.unwrap().await.unwrap();
    assert!(matches!(rep.outcome, RunOutcome::Failed { .. }), "{rep:?}");
    assert!(rep.worktree_kept && rep.worktree.as_ref().unwrap().dir.join("half.txt").exists(), "{rep:?}");
    assert!(rep.kept_because.as_deref().unwrap().contains("uncommitted changes (half.txt)"), "{rep:?}");
}
