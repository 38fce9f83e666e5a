//! Whole rounds against a real git repository, shell providers and the in-memory queue.

use super::*;
use crate::config::ShellProviderConfig;
use crate::memqueue::{snap, MemQueue};
use crate::queue::PruneKind;
use kite_git::fixture::{git, git_repo, write};

const PER_TEST: &str = r#"+++
name = "tests"
priority = 10
title = "Fix {{ item.name }}"
dedup_key = "test:{{ item.name }}"
for_each = "tests.failures"
max_open = 5
+++
{{ item.message }}
"#;

const TODO: &str = r#"+++
name = "todo"
title = "Resolve {{ item.kind }} in {{ item.file }}"
dedup_key = "todo:{{ item.file }}:{{ item.text | slugify }}"
files = ["{{ item.file }}"]
for_each = "git.markers"
+++
{{ item.file }}:{{ item.line }}: {{ item.text }}
"#;

struct Notes;

impl NoteSource for Notes {
    fn search<'a>(&'a self, topic: &'a str, k: usize) -> crate::BoxFuture<'a, Result<Vec<crate::NoteHit>, crate::SourceError>> {
        Box::pin(async move {
            Ok(vec![crate::NoteHit {
                id: "n1".into(),
                title: format!("status for {topic} (k={k})"),
                kind: Some("status".into()),
                score: 1.0,
                body: "tests are flaky".into(),
            }])
        })
    }
}

fn scheduler(repo: &Path, q: &MemQueue, providers: &[(&str, &str)]) -> Scheduler {
    let mut cfg = SchedConfig { builtin_templates: false, ..SchedConfig::default() };
    for (name, cmd) in providers {
        cfg.providers.insert(name.to_string(), ShellProviderConfig { command: cmd.to_string(), timeout: None });
    }
    Scheduler::new(cfg, repo, Arc::new(q.clone()), Some(Arc::new(Notes)))
}

fn all(dry_run: bool) -> TickOptions {
    TickOptions { dry_run, all: true, now: None }
}

#[tokio::test]
async fn templates_render_plan_and_queue() {
    let repo = git_repo();
    let p = repo.path();
    write(p, "prompts/tests.md.tera", PER_TEST);
    write(p, "prompts/todo.md.tera", TODO);
    write(p, "prompts/broken.md.tera", "+++\ntitle = \"{{ oops\"\n+++\n");
    write(p, "prompts/extract.md.tera", "not a strategy template {{ x }}");
    write(p, "src/lib.rs", "fn a() {}\n// TODO: handle errors\n// FIXME later\n");
    git(p, &["add", "."]);
    git(p, &["commit", "-q", "-m", "code"]);
    write(p, "failures.json", r#"{"failures": [{"name": "a", "message": "boom"}, {"name": "b", "message": "bang"}]}"#);
    let q = MemQueue::new(Utc::now().timestamp_millis());
    let mut s = scheduler(p, &q, &[("tests", "cat failures.json; exit 101")]);
    assert_eq!(s.templates().len(), 2);
    assert_eq!(s.template_errors().len(), 1);

    // Dry run: everything planned, nothing created.
    let r = s.tick(all(true)).await;
    assert_eq!(r.queued.len(), 4, "{r:#?}");
    assert!(q.with(|s| s.tasks.is_empty()));
    assert!(r.errors.iter().any(|e| e.message.contains("broken.md.tera")));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["candidates"][0]["score"]["priority"], 10.0);
    assert_eq!(json["candidates"][0]["outcome"], "queued");

    // Real run.
    let r = s.tick(all(false)).await;
    assert_eq!(r.queued.iter().filter(|x| x.id.is_some()).count(), 4);
    let titles: Vec<String> = q.with(|s| s.tasks.iter().map(|t| t.title.clone()).collect());
    assert!(titles.contains(&"Fix a".to_string()));
    assert!(titles.contains(&"Resolve TODO in src/lib.rs".to_string()));
    assert!(titles.contains(&"Resolve FIXME in src/lib.rs".to_string()));
    let todo = q.with(|s| s.tasks.iter().find(|t| t.title.starts_with("Resolve TODO")).cloned().unwrap());
    assert_eq!(todo.files, vec!["src/lib.rs".to_string()]);
    assert_eq!(todo.template.as_deref(), Some("todo"));

    // Same state again: nothing new.
    let r = s.tick(all(false)).await;
    assert!(r.queued.is_empty(), "{:?}", r.queued);
    assert_eq!(r.unchanged.len(), 4);

    // Test `a` now fails differently: its task is superseded by the new one, naming it.
    write(p, "failures.json", r#"{"failures": [{"name": "a", "message": "new boom"}]}"#);
    let r = s.tick(all(false)).await;
    assert_eq!(r.queued.len(), 1);
    let new_id = r.queued[0].id.unwrap();
    assert_eq!(r.superseded.len(), 1);
    assert_eq!(r.superseded[0].superseded_by, Some(Target::Task { id: new_id }));
    let (old_id, note) = q.with(|s| s.prunes[0].clone());
    assert_eq!(q.task(old_id).status, TaskStatus::Pruned);
    assert_eq!(note.kind, PruneKind::Superseded);
    assert_eq!(note.superseded_by, Some(new_id));
}

#[tokio::test]
async fn failing_provider_is_reported_and_the_round_goes_on() {
    let repo = git_repo();
    let p = repo.path();
    write(p, "prompts/tests.md.tera", PER_TEST);
    write(p, "prompts/todo.md.tera", TODO);
    write(p, "notes.rs", "// TODO: x\n");
    let q = MemQueue::new(0);
    let mut s = scheduler(p, &q, &[("tests", "echo not json")]);
    let r = s.tick(all(false)).await;
    assert!(r.errors.iter().any(|e| e.source == "tests" && e.message.contains("did not print JSON")), "{:?}", r.errors);
    assert_eq!(r.queued.len(), 1);
    let tests_run = r.templates.iter().find(|t| t.name == "tests").unwrap();
    assert!(tests_run.skipped.as_deref().unwrap().contains("tests.failures"));
}

#[tokio::test]
async fn strategy_audit_queues_valid_output_and_reports_malformed() {
    let repo = git_repo();
    let p = repo.path();
    write(
        p,
        "prompts/audit.md.tera",
        r#"+++
name = "audit"
topic = "project status"
priority = 3
command = "sh answer.sh"
+++
Notes: {% for n in vault %}{{ n.title }}; {% endfor %}
"#,
    );
    // The fake agent echoes the first prompt line into a task title, and adds a bad item.
    write(
        p,
        "answer.sh",
        r#"read line
printf '[{"title": "%s", "priority": 9}, {"body": "no title"}]' "$line"
"#,
    );
    let q = MemQueue::new(0);
    let mut s = scheduler(p, &q, &[]);
    let r = s.tick(all(false)).await;
    assert_eq!(r.queued.len(), 1, "{r:#?}");
    let t = q.task(r.queued[0].id.unwrap());
    assert_eq!(t.title, "Notes: status for project status (k=5);");
    assert_eq!(t.priority, 9);
    assert!(r.errors.iter().any(|e| e.source == "template:audit" && e.message.contains("item 1")));

    write(p, "answer.sh", "echo 'I think you should write more tests'\n");
    let r = s.tick(all(false)).await;
    assert!(r.queued.is_empty());
    assert!(r.errors.iter().any(|e| e.message.contains("not JSON")), "{:?}", r.errors);
}

#[tokio::test]
async fn pending_tasks_are_pruned_with_reasons() {
    let repo = git_repo();
    let now = Utc::now();
    let q = MemQueue::new(now.timestamp_millis());
    let mut stale = snap(1, "stale");
    stale.created_at_ms = now.timestamp_millis() - 3 * 3_600_000;
    stale.stale_after_secs = Some(3600);
    q.insert(stale);
    let mut child = snap(2, "child");
    child.depends_on = vec![1];
    child.created_at_ms = now.timestamp_millis();
    q.insert(child);
    let mut failed = snap(3, "failed");
    failed.status = TaskStatus::Failed;
    q.insert(failed);
    let mut orphan = snap(4, "orphan");
    orphan.depends_on = vec![3];
    q.insert(orphan);
    let mut s = scheduler(repo.path(), &q, &[]);
    let r = s.tick(all(false)).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let notes = q.with(|s| s.prunes.clone());
    let kinds: Vec<(i64, PruneKind)> = notes.iter().map(|(id, n)| (*id, n.kind)).collect();
    assert!(kinds.contains(&(1, PruneKind::Stale)));
    assert!(kinds.contains(&(2, PruneKind::DependencyFailed)));
    assert!(kinds.contains(&(4, PruneKind::DependencyFailed)));
    assert!(notes.iter().all(|(_, n)| n.score.is_some() && !n.reason.is_empty()));
}

#[tokio::test]
async fn cron_templates_wait_for_their_time() {
    let repo = git_repo();
    let p = repo.path();
    write(p, "prompts/hourly.md.tera", "+++\nschedule = \"0 * * * *\"\ntitle = \"hourly\"\n+++\n");
    write(p, "prompts/always.md.tera", "+++\ntitle = \"always\"\n+++\n");
    let q = MemQueue::new(0);
    let mut s = scheduler(p, &q, &[]);
    use chrono::TimeZone;
    let t = |h, m| Some(Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap());
    let names = |r: &TickReport| r.templates.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let r = s.tick(TickOptions { now: t(10, 30), ..Default::default() }).await;
    assert_eq!(names(&r), vec!["always"]);
    let r = s.tick(TickOptions { now: t(10, 59), ..Default::default() }).await;
    assert_eq!(names(&r), vec!["always"]);
    let r = s.tick(TickOptions { now: t(11, 0), ..Default::default() }).await;
    assert_eq!(names(&r), vec!["always", "hourly"]);
    let r = s.tick(TickOptions { now: t(11, 1), ..Default::default() }).await;
    assert_eq!(names(&r), vec!["always"]);
}

#[tokio::test]
async fn template_edits_are_picked_up() {
    let repo = git_repo();
    let p = repo.path();
    write(p, "prompts/a.md.tera", "+++\ntitle = \"a\"\n+++\n");
    let q = MemQueue::new(0);
    let mut s = scheduler(p, &q, &[]);
    assert!(!s.reload_if_changed());
    write(p, "prompts/b.md.tera", "+++\ntitle = \"b\"\n+++\n");
    assert!(s.reload_if_changed());
    assert_eq!(s.templates().len(), 2);
    let infos = s.template_infos();
    assert_eq!(infos[0].0.schedule, "every tick");
}

#[tokio::test]
async fn run_loop_ticks_until_shutdown() {
    let repo = git_repo();
    let p = repo.path();
    write(p, "prompts/a.md.tera", "+++\ntitle = \"a\"\n+++\n");
    let q = MemQueue::new(0);
    let cfg = SchedConfig { builtin_templates: false, tick: std::time::Duration::from_millis(20), ..SchedConfig::default() };
    let s = Scheduler::new(cfg, p, Arc::new(q.clone()), None);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(s.run(async move {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while q.with(|s| s.tasks.is_empty()) {
        assert!(Instant::now() < deadline, "no tick queued anything");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tx.send(()).unwrap();
    h.await.unwrap();
    // Later ticks found the same candidate unchanged: still one task.
    assert_eq!(q.with(|s| s.tasks.len()), 1);
}

#[tokio::test]
async fn a_template_whose_tasks_keep_failing_gets_one_open_task_and_says_why() {
    let repo = git_repo();
    let p = repo.path();
    write(p, "prompts/todo.md.tera", TODO);
    write(p, "src/lib.rs", "// TODO: one\n// TODO: two\n// TODO: three\n");
    git(p, &["add", "."]);
    git(p, &["commit", "-q", "-m", "markers"]);
    let q = MemQueue::new(Utc::now().timestamp_millis());
    // Its earlier tasks: 1 done, 4 failed, 1 pruned.
    for (i, status) in ["done", "failed", "failed", "failed", "failed", "pruned"].into_iter().enumerate() {
        let mut t = snap(100 + i as i64, &format!("old {i}"));
        t.template = Some("todo".into());
        t.status = status.parse().unwrap();
        q.insert(t);
    }
    let mut s = scheduler(p, &q, &[]);
    let r = s.tick(all(true)).await;
    let run = r.templates.iter().find(|t| t.name == "todo").unwrap();
    let why = run.throttled.as_deref().expect("throttled");
    assert!(why.contains("5 of its 6 finished tasks failed or were pruned"), "{why}");
    assert_eq!(r.candidates.len(), 3);
    assert_eq!(r.queued.len(), 1, "one open task at a time: {r:#?}");
}

/// The built-in issues template over a stand-in `gh` (the real one needs a GitHub login): open
/// issues become tasks keyed by number, a closed one resolves its pending task, and with no
/// `gh` the template is skipped with the reason, not reported as an error.
#[tokio::test]
async fn open_issues_become_tasks_and_a_closed_one_resolves_its_task() {
    let repo = git_repo();
    let p = repo.path();
    let bin = tempfile::tempdir().unwrap();
    let list = bin.path().join("list.json");
    let gh = bin.path().join("gh");
    std::fs::write(&gh, format!("#!/bin/sh\n[ \"$1\" = auth ] && exit 0\ncat {}\n", list.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&list, r#"[{"number": 4, "title": "Crash on empty input", "body": "run it with no args", "labels": [{"name": "kite"}], "url": "u4"},
                              {"number": 9, "title": "Slow start", "body": "", "labels": [], "url": "u9"}]"#).unwrap();
    let q = MemQueue::new(Utc::now().timestamp_millis());
    let mut cfg = SchedConfig::default();
    cfg.issues.gh = gh.display().to_string();
    let mut s = Scheduler::new(cfg.clone(), p, Arc::new(q.clone()), None);
    let r = s.tick(all(false)).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let titles: Vec<&str> = r.queued.iter().filter(|x| x.template == "github-issues").map(|x| x.title.as_str()).collect();
    assert_eq!(titles, ["Crash on empty input (#4)", "Slow start (#9)"]);
    let body = q.with(|s| s.tasks.iter().find(|t| t.title.contains("#4")).unwrap().body.clone());
    assert!(body.contains("run it with no args") && body.contains("Fixes #4"), "{body}");

    // #4 was closed.
    std::fs::write(&list, r#"[{"number": 9, "title": "Slow start", "body": "", "labels": [], "url": "u9"}]"#).unwrap();
    let r = s.tick(all(false)).await;
    let resolved: Vec<(&str, &str)> = r.superseded.iter().map(|d| (d.title.as_str(), d.reason.as_str())).collect();
    assert_eq!(resolved, [("Crash on empty input (#4)", "resolved: `issues.open` no longer has it")]);
    assert!(r.queued.iter().all(|x| x.template != "github-issues"), "#9 is unchanged: {:?}", r.queued);

    // gh fails: an error for the round, and nothing resolved by a list it did not get.
    std::fs::write(&gh, "#!/bin/sh\n[ \"$1\" = auth ] && exit 0\necho 'HTTP 502' >&2; exit 1\n").unwrap();
    let r = s.tick(all(false)).await;
    assert!(r.errors.iter().any(|e| e.source == "issues" && e.message.contains("HTTP 502")), "{:?}", r.errors);
    assert!(r.superseded.is_empty());

    // No gh at all: skipped, with why.
    cfg.issues.gh = "kite-no-such-gh".into();
    let mut s = Scheduler::new(cfg, p, Arc::new(q.clone()), None);
    let r = s.tick(all(true)).await;
    let run = r.templates.iter().find(|t| t.name == "github-issues").unwrap();
    assert!(run.skipped.as_deref().unwrap().contains("not installed"), "{run:?}");
    assert!(r.errors.iter().all(|e| e.source != "issues"), "{:?}", r.errors);
}
