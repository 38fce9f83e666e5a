//! The lander on real repositories, with the book in memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kite_core::{MergeCounts as Counts, MergeState as State};
use kite_git::fixture::{git as tgit, git_repo, write};

use crate::*;
use kite_proto::ops::MergeStep;

/// Queues task `id` (template `chores`) as the runner would.
fn enqueue(l: &Lander, book: &MemBook, id: i64) {
    let _ = l;
    book.enqueue_task(
        id,
        &format!("task {id}"),
        Some("chores"),
        &kite_git::branch_name(id),
        "main",
    );
}

/// A branch `kite/task-ID` from main with one commit writing `file`.
fn branch_with(repo: &Path, id: i64, file: &str, text: &str) {
    let b = kite_git::branch_name(id);
    tgit(repo, &["branch", &b, "main"]);
    let dir = tempfile::tempdir().unwrap();
    let wt = dir.path().join("wt");
    tgit(repo, &["worktree", "add", "-q", &wt.to_string_lossy(), &b]);
    write(&wt, file, text);
    tgit(&wt, &["add", "-A"]);
    tgit(&wt, &["commit", "-qm", &format!("task {id}: {file}")]);
    tgit(
        repo,
        &["worktree", "remove", "--force", &wt.to_string_lossy()],
    );
}

/// A repository, a kite home and a book in memory.
struct Setup {
    repo: tempfile::TempDir,
    home: tempfile::TempDir,
    book: Arc<MemBook>,
}

impl Setup {
    fn new() -> Self {
        Self {
            repo: git_repo(),
            home: tempfile::tempdir().unwrap(),
            book: Arc::new(MemBook::default()),
        }
    }
}

fn lander(repo: &Path, home: &Path, book: &Arc<MemBook>, verify: &str) -> Lander {
    let cfg = MergeConfig {
        verify: Some(verify.into()),
        wait_poll: Duration::from_millis(50),
        wait_max: Duration::from_millis(400),
        ..Default::default()
    };
    Lander::new(cfg, repo, home, book.clone())
}

async fn land(l: &Lander, book: &MemBook, id: i64) -> Landing {
    enqueue(l, book, id);
    l.land(id).await.unwrap()
}

#[tokio::test]
async fn two_independent_branches_land_and_a_clean_checkout_is_fast_forwarded() {
    let t = Setup::new();
    let (p, home, book) = (t.repo.path(), &t.home, &t.book);
    branch_with(p, 1, "a.txt", "a\n");
    branch_with(p, 2, "b.txt", "b\n");
    let l = lander(p, home.path(), &book, "test -f README.md");
    assert!(matches!(
        land(&l, &book, 1).await,
        Landing::Landed { verified: true, .. }
    ));
    assert!(matches!(land(&l, &book, 2).await, Landing::Landed { .. }));
    let log = tgit(p, &["log", "--format=%s", "main"]);
    assert!(
        log.contains("task 1: a.txt") && log.contains("task 2: b.txt"),
        "{log}"
    );
    // Every landed commit names its task in a trailer (the first was already on top of main).
    let trailers = tgit(
        p,
        &[
            "log",
            "--format=%(trailers:key=Kite-Task,valueonly,separator=%x2C)",
            "main",
        ],
    );
    let trailers: Vec<&str> = trailers
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(trailers, ["2", "1"], "{trailers:?}");
    // main is checked out and was clean: its files moved with it, as a pull would.
    assert!(p.join("a.txt").exists() && p.join("b.txt").exists());
    assert_eq!(tgit(p, &["status", "--porcelain"]), "");
    let (total, by) = book.counts();
    assert_eq!(
        total,
        Counts {
            landed: 2,
            ..Default::default()
        }
    );
    assert_eq!(by["chores"].landed, 2);
    assert!(
        kite_git::unmerged(p, "main", "kite/task-2")
            .await
            .unwrap()
            .is_empty(),
        "the branch is on main now"
    );
}

#[tokio::test]
async fn a_conflict_a_failed_verify_and_no_commits_do_not_land() {
    let t = Setup::new();
    let (p, home, book) = (t.repo.path(), &t.home, &t.book);
    branch_with(p, 1, "README.md", "# one\n");
    branch_with(p, 2, "README.md", "# two\n");
    let l = lander(p, home.path(), &book, "");
    assert!(matches!(
        land(&l, &book, 1).await,
        Landing::Landed {
            verified: false,
            ..
        }
    ));
    let before = tgit(p, &["rev-parse", "main"]);
    match land(&l, &book, 2).await {
        Landing::Conflict {
            files,
            context,
            target,
        } => {
            assert_eq!(
                (files, target.as_str()),
                (vec!["README.md".to_string()], "main")
            );
            assert!(
                context.contains("<<<<<<<") && context.contains("# two"),
                "{context}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tgit(p, &["rev-parse", "main"]), before, "main did not move");
    assert!(
        tgit(
            &home.path().join("merge/worktree"),
            &["status", "--porcelain"]
        )
        .is_empty(),
        "no rebase left half done"
    );

    branch_with(p, 3, "c.txt", "c\n");
    let l = lander(p, home.path(), &book, "echo 'test foo ... FAILED'; exit 3");
    match land(&l, &book, 3).await {
        Landing::Rejected { output, .. } => assert!(
            output.contains("FAILED") && output.contains("exit code 3"),
            "{output}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(tgit(p, &["rev-parse", "main"]), before);

    tgit(p, &["branch", "kite/task-4", "main"]);
    assert_eq!(
        land(&l, &book, 4).await,
        Landing::NoChanges {
            uncommitted: vec![]
        }
    );
    assert_eq!(
        book.counts().0,
        Counts {
            landed: 1,
            rejected: 1,
            conflicted: 1,
            not_verified: 1
        }
    );
    let states: Vec<State> = book.entries().iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            State::Landed,
            State::Conflict,
            State::Rejected,
            State::NoChanges
        ]
    );
}

#[tokio::test]
async fn a_persons_uncommitted_changes_are_waited_on_never_touched() {
    let t = Setup::new();
    let (p, home, book) = (t.repo.path(), &t.home, &t.book);
    branch_with(p, 1, "a.txt", "a\n");
    write(p, "README.md", "# mine, not committed\n");
    let l = lander(p, home.path(), &book, "");
    enqueue(&l, &book, 1);
    let before = tgit(p, &["rev-parse", "main"]);
    let h = {
        let (p, home, book) = (p.to_path_buf(), home.path().to_path_buf(), book.clone());
        tokio::spawn(async move { lander(&p, &home, &book, "").land(1).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let e = book.entries().into_iter().find(|e| e.task_id == 1).unwrap();
    assert_eq!(e.state, State::Waiting);
    assert!(
        e.detail.contains("uncommitted changes (README.md)"),
        "{}",
        e.detail
    );
    // The person commits: it lands on top of their commit.
    tgit(p, &["commit", "-qam", "mine"]);
    let r = h.await.unwrap();
    assert!(matches!(r, Landing::Landed { .. }), "{r:?}");
    let log = tgit(p, &["log", "--format=%s", "-3", "main"]);
    assert_eq!(log, "task 1: a.txt\nmine\ninitial\n");
    assert_ne!(tgit(p, &["rev-parse", "main"]), before);
    assert_eq!(
        std::fs::read_to_string(p.join("README.md")).unwrap(),
        "# mine, not committed\n"
    );

    // Still dirty after wait_max: it goes back with the reason, and the file is the person's.
    branch_with(p, 2, "b.txt", "b\n");
    write(p, "README.md", "# mine again\n");
    let r = land(&l, &book, 2).await;
    assert!(
        matches!(&r, Landing::Waited { detail } if detail.contains("waited too long")),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("README.md")).unwrap(),
        "# mine again\n"
    );
}

#[tokio::test]
async fn a_landing_interrupted_after_the_move_is_finished_once_on_resume() {
    let t = Setup::new();
    let (p, home, book) = (t.repo.path(), &t.home, &t.book);
    branch_with(p, 1, "a.txt", "a\n");
    let l = lander(p, home.path(), &book, "");
    enqueue(&l, &book, 1);
    // As if the daemon died right after moving main: the book says Moving, main has it.
    let tip = tgit(p, &["rev-parse", "kite/task-1"]).trim().to_string();
    tgit(p, &["merge", "-q", "--ff-only", &tip]);
    let moving = MergeStep {
        task: 1,
        state: State::Moving,
        detail: String::new(),
        base: None,
        new: Some(tip.clone()),
        verified: None,
        tally: None,
        review: None,
        tests: None,
    };
    book.step(moving).await.unwrap();
    assert_eq!(l.in_flight().await.unwrap().len(), 1);
    let r = l.land(1).await.unwrap();
    assert_eq!(
        r,
        Landing::Landed {
            commit: tip.clone(),
            target: "main".into(),
            verified: false
        }
    );
    assert_eq!(
        tgit(p, &["log", "--format=%s", "main"]),
        "task 1: a.txt\ninitial\n",
        "landed once"
    );
    assert!(l.in_flight().await.unwrap().is_empty());
    assert_eq!(book.counts().0.landed, 1);
}

#[tokio::test]
async fn discard_removes_the_work_only_when_asked_and_not_while_landing() {
    let t = Setup::new();
    let (p, home, book) = (t.repo.path(), &t.home, &t.book);
    branch_with(p, 1, "a.txt", "a\n");
    let l = lander(p, home.path(), &book, "");
    enqueue(&l, &book, 1);
    let e = discard(book.as_ref(), p, 1).await.unwrap_err();
    assert!(
        e.to_string().contains("queued in the merge queue")
            && e.to_string().contains("once that landing ends"),
        "{e}"
    );
    assert_eq!(
        tgit(p, &["branch", "--list", "kite/*"]).trim(),
        "kite/task-1",
        "refused: nothing removed"
    );
    let conflict = MergeStep {
        task: 1,
        state: State::Conflict,
        detail: String::new(),
        base: None,
        new: None,
        verified: None,
        tally: None,
        review: None,
        tests: None,
    };
    book.step(conflict).await.unwrap();
    assert_eq!(
        discard(book.as_ref(), p, 1).await.unwrap(),
        ["branch kite/task-1"]
    );
    assert!(tgit(p, &["branch", "--list", "kite/*"]).is_empty());
    assert_eq!(book.entries()[0].state, State::Discarded);
    assert!(discard(book.as_ref(), p, 1)
        .await
        .unwrap_err()
        .to_string()
        .contains("no kite worktree or branch"));
}

#[tokio::test]
async fn a_branch_already_on_the_target_lands_as_is_and_a_persons_rebase_is_waited_on() {
    let t = Setup::new();
    let (p, home, book) = (t.repo.path(), &t.home, &t.book);
    branch_with(p, 1, "a.txt", "a\n");
    // main moves on; the agent merged main into its branch itself: it is on top of main.
    write(p, "m.txt", "m\n");
    tgit(p, &["add", "m.txt"]);
    tgit(p, &["commit", "-qm", "main moves"]);
    let dir = tempfile::tempdir().unwrap();
    let wt = dir.path().join("wt");
    tgit(
        p,
        &[
            "worktree",
            "add",
            "-q",
            &wt.to_string_lossy(),
            "kite/task-1",
        ],
    );
    tgit(&wt, &["merge", "-q", "--no-edit", "main"]);
    let tip = tgit(&wt, &["rev-parse", "HEAD"]).trim().to_string();
    tgit(p, &["worktree", "remove", "--force", &wt.to_string_lossy()]);
    let l = lander(p, home.path(), &book, "");
    match land(&l, &book, 1).await {
        Landing::Landed { commit, .. } => {
            assert_eq!(commit, tip, "the agent's merge commit landed unchanged")
        }
        other => panic!("{other:?}"),
    }

    // The person is in the middle of a rebase in the main checkout: kite waits.
    branch_with(p, 2, "b.txt", "b\n");
    let git_dir = tgit(p, &["rev-parse", "--absolute-git-dir"])
        .trim()
        .to_string();
    std::fs::create_dir_all(Path::new(&git_dir).join("rebase-merge")).unwrap();
    let r = land(&l, &book, 2).await;
    assert!(
        matches!(&r, Landing::Waited { detail } if detail.contains("in the middle of a rebase")),
        "{r:?}"
    );
    std::fs::remove_dir_all(Path::new(&git_dir).join("rebase-merge")).unwrap();
}

/// libtest's output for `passing` tests, as `cargo test` prints it.
fn libtest(passing: &[&str]) -> String {
    let mut s = String::from(
        "     Running unittests src/lib.rs (target/debug/deps/calc-0123456789abcdef)\n\n",
    );
    for t in passing {
        s.push_str(&format!("test {t} ... ok\n"));
    }
    s.push_str(&format!(
        "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
        passing.len()
    ));
    s
}

#[tokio::test]
async fn each_landing_records_what_it_did_to_the_tests_against_the_last_landing() {
    let t = Setup::new();
    let (p, home, book) = (t.repo.path(), &t.home, &t.book);
    // The verify command prints what the branch's tests say (each task changes them).
    let l = lander(p, home.path(), book, "cat results.txt");
    let tests_of = |id: i64| {
        book.entries()
            .into_iter()
            .rev()
            .find(|e| e.task_id == id)
            .and_then(|e| e.tests)
            .unwrap()
    };

    branch_with(p, 1, "results.txt", &libtest(&["a", "b"]));
    assert!(matches!(land(&l, book, 1).await, Landing::Landed { .. }));
    let first = tests_of(1);
    assert_eq!(
        (first.passed, first.baseline.as_deref(), first.added),
        (2, None, 0),
        "nothing to compare the first with"
    );
    let first_commit = tgit(p, &["rev-parse", "main"]).trim().to_string();

    branch_with(p, 2, "results.txt", &libtest(&["a", "c", "d"]));
    assert!(matches!(land(&l, book, 2).await, Landing::Landed { .. }));
    let d = tests_of(2);
    assert_eq!(d.baseline.as_deref(), Some(first_commit.as_str()));
    assert!(d.by_name);
    assert_eq!((d.added, d.removed, d.broke, d.now_pass), (2, 1, 0, 0));
    assert_eq!(
        (d.added_names.clone(), d.removed_names.clone()),
        (
            vec!["calc::c".to_string(), "calc::d".to_string()],
            vec!["calc::b".to_string()]
        )
    );
    let second_commit = tgit(p, &["rev-parse", "main"]).trim().to_string();

    // Output no reader knows is recorded as unreadable, and is not the next landing's baseline.
    branch_with(p, 3, "results.txt", "all good, trust me\n");
    assert!(matches!(land(&l, book, 3).await, Landing::Landed { .. }));
    assert!(
        tests_of(3)
            .unreadable
            .as_deref()
            .unwrap()
            .contains("no test report"),
        "{:?}",
        tests_of(3)
    );

    branch_with(p, 4, "results.txt", &libtest(&["a", "c", "d", "e"]));
    assert!(matches!(land(&l, book, 4).await, Landing::Landed { .. }));
    let d = tests_of(4);
    assert_eq!(
        (d.baseline.as_deref(), d.added, d.removed),
        (Some(second_commit.as_str()), 1, 0)
    );
    assert_eq!(
        d.behind, 1,
        "task 3's landing is between that run and this one: {d:?}"
    );
    assert!(
        d.describe().contains("across 1 other commit"),
        "{}",
        d.describe()
    );

    // Another verify command names other tests: no baseline, not hundreds of "added".
    let l = lander(p, home.path(), book, "cat results.txt && true");
    branch_with(p, 5, "results.txt", &libtest(&["a", "c", "d", "e", "f"]));
    assert!(matches!(land(&l, book, 5).await, Landing::Landed { .. }));
    let d = tests_of(5);
    assert_eq!((d.baseline.as_deref(), d.added), (None, 0), "{d:?}");
}
