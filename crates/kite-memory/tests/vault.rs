//! End-to-end tests of the vault with the real model (all-MiniLM-L6-v2 from `make setup`).
//! The model is loaded once per test binary and shared by every vault.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kite_memory::search::SearchMode;
use kite_memory::{BuiltinExtractor, CommandExtractor, EmbedConfig, Embedder, Kind, MemoryError, NewNote, SearchOptions, Vault, VaultConfig};
use tempfile::TempDir;

fn model_dir() -> PathBuf {
    std::env::var_os("KITE_MODEL_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/all-mpnet-base-v2")))
}

fn embedder() -> Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| {
        let dir = model_dir();
        let dylib = std::env::var_os("KITE_ORT_DYLIB")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/libonnxruntime.so")));
        let cfg = EmbedConfig::resolve(Some(&dir), Some(&dylib)).expect("model config");
        Embedder::load(&cfg).unwrap_or_else(|e| panic!("the real model is needed for these tests (run `make setup`): {e}"))
    })
    .clone()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/transcripts")).join(name)
}

struct TestVault {
    _home: TempDir,
    dir: PathBuf,
    index: PathBuf,
    vault: Vault,
}

fn config(dir: &Path, index: &Path) -> VaultConfig {
    let mut c = VaultConfig::new(dir, index);
    c.embedder = Some(embedder());
    c
}

fn vault() -> TestVault {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("vault");
    let index = home.path().join("vault-index.db");
    let vault = Vault::open(config(&dir, &index)).unwrap();
    TestVault { _home: home, dir, index, vault }
}

fn note(kind: Kind, title: &str, body: &str) -> NewNote {
    NewNote { kind, title: title.into(), body: body.into(), ..Default::default() }
}

fn ids(v: &mut Vault, q: &str) -> Vec<String> {
    v.search(q, &SearchOptions::default()).unwrap().hits.into_iter().map(|h| h.id).collect()
}

fn seed(v: &mut Vault) -> Vec<String> {
    let notes = [
        note(Kind::Decision, "Database migrations must be reversible", "Every schema change ships with a down script so that it can be rolled back."),
        note(Kind::Preference, "Commit messages are short and imperative", "The user wants one-line commit subjects like 'Add lock queue', no prefixes."),
        note(Kind::Pattern, "Flaky socket tests: bind before spawning", "Bind the listener on a temporary path first, then spawn the server; never sleep."),
        note(Kind::Status, "Scheduler is half done", "Cron parsing and templates work; pruning and the runner are not written yet."),
        note(Kind::Antipattern, "Do not hold a mutex across an await point", "It deadlocked the daemon twice; use an actor or release the guard before awaiting."),
        note(Kind::Fact, "The daemon listens on a Unix socket in the kite home", "Clients find it at $KITE_HOME/kite.sock; it is removed at shutdown."),
    ];
    notes.into_iter().map(|n| v.add(n).unwrap().id).collect()
}

#[test]
fn paraphrase_without_shared_words_is_found_first() {
    let mut t = vault();
    let ids_ = seed(&mut t.vault);
    // No word in common with the note (checked after stemming by hand).
    let hits = ids(&mut t.vault, "how do we undo a table alteration?");
    assert_eq!(hits.first(), Some(&ids_[0]), "{hits:?}");
    let hits = ids(&mut t.vault, "what style should my git log entries follow");
    assert_eq!(hits.first(), Some(&ids_[1]), "{hits:?}");
    let res = t.vault.search("what style should my git log entries follow", &SearchOptions { mode: SearchMode::Vector, ..Default::default() }).unwrap();
    assert_eq!(res.hits[0].id, ids_[1]);
    assert!(res.hits[0].similarity.unwrap() > 0.2);
    // Keyword-only cannot find it: that is the point of the vectors.
    let kw = t.vault.search("undo table alteration", &SearchOptions { mode: SearchMode::Keyword, ..Default::default() }).unwrap();
    assert!(kw.hits.iter().all(|h| h.id != ids_[0]));
}

#[test]
fn near_duplicates_are_merged() {
    let mut t = vault();
    seed(&mut t.vault);
    let first = t.vault.add(note(Kind::Decision, "Use SQLite in WAL mode for the task queue", "")).unwrap();
    assert!(first.superseded.is_empty());
    let other = t.vault.add(note(Kind::Decision, "Use PostgreSQL for the reporting database", "")).unwrap();
    assert!(other.superseded.is_empty(), "a different decision must not supersede: {other:?}");
    // The same subject, another choice: the closest pair measured for the bar (0.85).
    let rival = t.vault.add(note(Kind::Decision, "Use PostgreSQL for the task queue", "")).unwrap();
    assert!(rival.superseded.is_empty(), "another choice for the same thing must not supersede: {rival:?}");
    let second = t.vault.add(note(Kind::Decision, "The task queue should use SQLite with WAL mode", "")).unwrap();
    assert_eq!(second.superseded.len(), 1, "{second:?}");
    assert_eq!(second.superseded[0].id, first.id);
    assert!(second.superseded[0].similarity >= 0.9);

    // The old file stays, marked.
    let old = t.vault.show(&first.id).unwrap();
    assert_eq!(old.superseded_by.as_deref(), Some(second.id.as_str()));
    assert!(t.dir.join(format!("{}.md", first.id)).exists());
    let new = t.vault.show(&second.id).unwrap();
    assert_eq!(new.supersedes, vec![first.id.clone()]);

    // Default search does not return it; asking for superseded notes does.
    let hits = ids(&mut t.vault, "sqlite wal task queue");
    assert!(hits.contains(&second.id));
    assert!(!hits.contains(&first.id), "{hits:?}");
    let all = t.vault.search("sqlite wal task queue", &SearchOptions { include_superseded: true, ..Default::default() }).unwrap();
    assert!(all.hits.iter().any(|h| h.id == first.id));

    // Adding exactly the same note again writes nothing.
    let again = t.vault.add(note(Kind::Decision, "The task queue should use SQLite with WAL mode", "")).unwrap();
    assert!(!again.created);
    assert_eq!(again.id, second.id);

    // A fresh index rebuilt from the files agrees.
    drop(t.vault);
    std::fs::remove_file(&t.index).unwrap();
    let mut v = Vault::open(config(&t.dir, &t.index)).unwrap();
    let hits = ids(&mut v, "sqlite wal task queue");
    assert!(hits.contains(&second.id) && !hits.contains(&first.id));
}

fn assert_no_secret_in(dir: &Path, secrets: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            assert_no_secret_in(&p, secrets);
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for s in secrets {
            assert!(!text.contains(s), "secret {s:?} found in {}", p.display());
        }
    }
}

const SECRETS: &[&str] = &["Tr0ub4dor-staging-77", "AKIAZ3EXAMPLEKEY7Q2W", "Zx9Qv7LmN4pR2sT8uW1yB6cD3eF5gH0jK"];

#[test]
fn builtin_extraction_writes_no_secret() {
    let mut t = vault();
    let report = t.vault.extract(&fixture("upload-worker-session.jsonl"), &BuiltinExtractor::default(), false).unwrap();
    assert_eq!(report.bad_lines, 1, "the truncated last line is skipped");
    assert_eq!(report.added.len(), 3, "{report:#?}");
    let titles: Vec<&str> = report.proposed.iter().map(|n| n.title.as_str()).collect();
    // The decision with its reason, the cause of the failure in words, and what changed.
    assert!(titles.iter().any(|t| t.contains("SQLite with WAL instead of Redis")), "{titles:?}");
    assert!(titles.iter().any(|t| t.contains("UploadJob is missing the serde derive")), "{titles:?}");
    assert!(titles.iter().any(|t| t.starts_with("Upload worker crash fixed")), "{titles:?}");
    // Not an exit code, a file list, or the curl failure that has nothing to do with the project.
    assert!(!titles.iter().any(|t| t.contains("Fix for") || t.contains("Files most") || t.contains("resolve host")), "{titles:?}");
    assert!(!titles.iter().any(|t| t.contains("Go")), "sidechain chatter is not a decision: {titles:?}");
    assert!(report.source.contains("3f1c2a9e"));
    // The secrets are in the transcript...
    let raw = std::fs::read_to_string(fixture("upload-worker-session.jsonl")).unwrap();
    assert!(SECRETS.iter().all(|s| raw.contains(s)));
    // ...and nowhere in the vault or the index (db and WAL).
    drop(t.vault);
    assert_no_secret_in(t._home.path(), SECRETS);
}

#[test]
fn command_extraction_redacts_prompt_and_output() {
    let mut t = vault();
    let prompt_file = t._home.path().join("prompt.txt");
    let cmd = format!(
        "cat > '{}'; echo '[{{\"kind\":\"decision\",\"title\":\"Queue in SQLite\",\"body\":\"connect with postgres://harbor:Tr0ub4dor-staging-77@db/x\",\"tags\":[\"queue\"]}}]'",
        prompt_file.display()
    );
    let report = t.vault.extract(&fixture("upload-worker-session.jsonl"), &CommandExtractor::new(cmd), false).unwrap();
    assert_eq!(report.added.len(), 1);
    let prompt = std::fs::read_to_string(&prompt_file).unwrap();
    assert!(prompt.contains("UploadJob"), "the prompt carries the transcript");
    let n = t.vault.show(&report.added[0].id).unwrap();
    assert!(n.body.contains("[REDACTED]"));
    std::fs::remove_file(&prompt_file).unwrap();
    assert!(SECRETS.iter().all(|s| !prompt.contains(s)), "secret sent to the command");
    drop(t.vault);
    assert_no_secret_in(t._home.path(), SECRETS);
}

#[test]
fn bad_command_output_writes_nothing() {
    let mut t = vault();
    for cmd in ["echo 'I could not find anything useful'", "echo '[{\"title\": 3}]'", "exit 3"] {
        let err = t.vault.extract(&fixture("upload-worker-session.jsonl"), &CommandExtractor::new(cmd), false).unwrap_err();
        assert!(matches!(err, MemoryError::Extract(_)), "{cmd}: {err}");
    }
    assert_eq!(std::fs::read_dir(&t.dir).unwrap().count(), 0);
    let err = t.vault.extract(&fixture("all-malformed.jsonl"), &BuiltinExtractor::default(), false).unwrap_err();
    assert!(err.to_string().contains("no readable record"), "{err}");
}

#[test]
fn a_malformed_answer_is_asked_for_again_once_then_reported() {
    let mut t = vault();
    let count = t._home.path().join("calls");
    // Malformed the first time, a good list the second.
    let cmd = format!(
        "cat > /dev/null; n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'; if [ $n -eq 1 ]; then echo 'Sure! Here are the notes: kind=decision'; else echo '[{{\"kind\":\"fact\",\"title\":\"The queue lives in SQLite\",\"body\":\"WAL mode.\"}}]'; fi",
        c = count.display()
    );
    let report = t.vault.extract(&fixture("upload-worker-session.jsonl"), &CommandExtractor::new(cmd), false).unwrap();
    assert_eq!(report.added.len(), 1, "{report:#?}");
    assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "2", "asked twice");
    // Malformed both times: reported, nothing written.
    let before = std::fs::read_dir(&t.dir).unwrap().count();
    let err = t.vault.extract(&fixture("upload-worker-session.jsonl"), &CommandExtractor::new("cat > /dev/null; echo 'no JSON here'"), false).unwrap_err();
    assert!(err.to_string().contains("malformed JSON twice"), "{err}");
    assert_eq!(std::fs::read_dir(&t.dir).unwrap().count(), before);
}

#[test]
fn a_long_transcript_goes_in_parts_and_a_note_two_parts_propose_is_kept_once() {
    let mut t = vault();
    let count = t._home.path().join("parts");
    let cmd = format!(
        "cat > /dev/null; echo x >> '{}'; echo '[{{\"kind\":\"decision\",\"title\":\"The upload queue lives in SQLite\",\"body\":\"Instead of Redis: one less service.\"}}]'",
        count.display()
    );
    let mut e = CommandExtractor::new(cmd);
    e.max_transcript_chars = 1500;
    let report = t.vault.extract(&fixture("upload-worker-session.jsonl"), &e, false).unwrap();
    let calls = std::fs::read_to_string(&count).unwrap().lines().count();
    assert!(calls > 1, "one prompt per part ({calls})");
    assert!(calls <= e.max_parts);
    assert_eq!(report.proposed.len(), 1, "{report:#?}");
}

#[test]
fn corrupt_note_is_skipped_and_index_intact() {
    let mut t = vault();
    let ids_ = seed(&mut t.vault);
    let before = t.vault.stats().unwrap().index.notes;
    // A half-written new file, an empty file, and a good note damaged by hand.
    let half = "---\nid: half\nkind: decision\ntitle: Half writ";
    std::fs::write(t.dir.join("half.md"), half).unwrap();
    std::fs::write(t.dir.join("empty.md"), "").unwrap();
    let damaged = t.dir.join(format!("{}.md", ids_[2]));
    std::fs::write(&damaged, "---\nid: x\ntags: [unclosed\n").unwrap();
    let report = t.vault.sync().unwrap();
    let skipped: Vec<&str> = report.skipped.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(skipped.len(), 3, "{report:?}");
    assert!(skipped.contains(&"half.md") && skipped.contains(&"empty.md"));
    // Nothing deleted or rewritten.
    assert_eq!(std::fs::read_to_string(t.dir.join("half.md")).unwrap(), half);
    assert!(damaged.exists());
    // The index still has every good note, including the last good version of the damaged one.
    assert_eq!(t.vault.stats().unwrap().index.notes, before);
    let hits = ids(&mut t.vault, "flaky socket tests");
    assert_eq!(hits.first(), Some(&ids_[2]));
    // A huge note is refused with a clear error.
    let err = t.vault.add(note(Kind::Fact, "huge", &"x".repeat(70 * 1024))).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    // An empty query too.
    assert!(matches!(t.vault.search("  ", &SearchOptions::default()), Err(MemoryError::EmptyQuery)));
}

#[test]
fn hand_edits_are_picked_up_by_sync() {
    let mut t = vault();
    let ids_ = seed(&mut t.vault);
    // Edit a note's body by hand.
    let path = t.dir.join(format!("{}.md", ids_[3]));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("pruning and the runner are not written yet", "the runner now spawns agents in git worktrees")).unwrap();
    // Delete one, and write a new one without front matter.
    std::fs::remove_file(t.dir.join(format!("{}.md", ids_[5]))).unwrap();
    std::fs::write(t.dir.join("release-train.md"), "# Releases go out every second Tuesday\n\nThe release train leaves whether or not a feature is ready.\n").unwrap();
    let report = t.vault.sync().unwrap();
    assert_eq!((report.added, report.updated, report.removed), (1, 1, 1), "{report:?}");
    assert_eq!(report.unchanged, 4);
    let hits = ids(&mut t.vault, "worktrees");
    assert_eq!(hits.first(), Some(&ids_[3]));
    assert!(ids(&mut t.vault, "unix socket kite home").iter().all(|h| h != &ids_[5]));
    let hits = ids(&mut t.vault, "how often is there a new release?");
    assert_eq!(hits.first().map(String::as_str), Some("release-train"));
    // A second sync has nothing to do.
    let again = t.vault.sync().unwrap();
    assert_eq!((again.added, again.updated, again.removed, again.unchanged), (0, 0, 0, 6));
}

#[test]
fn keyword_search_works_without_a_model() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("vault");
    let index = home.path().join("idx.db");
    let mut c = VaultConfig::new(&dir, &index);
    c.model_dir = Some(home.path().join("no-model-here"));
    let mut v = Vault::open(c).unwrap();
    let out = v.add(note(Kind::Fact, "Deploys happen on Tuesdays", "")).unwrap();
    assert!(!out.embedded);
    let res = v.search("deploys", &SearchOptions::default()).unwrap();
    assert_eq!(res.mode, SearchMode::Keyword);
    assert!(res.warning.as_deref().unwrap().contains("make install"));
    assert_eq!(res.hits[0].id, out.id);
    let err = v.embedder().unwrap_err().to_string();
    assert!(err.contains("kite doctor") && err.contains("no-model-here"), "{err}");
    // Opening later with a model embeds the notes that have no vector yet.
    drop(v);
    let mut v = Vault::open(config(&dir, &index)).unwrap();
    let st = v.stats().unwrap();
    assert_eq!(st.index.with_vector, 1, "{st:?}");
    let res = v.search("which weekday are releases", &SearchOptions { mode: SearchMode::Vector, ..Default::default() }).unwrap();
    assert_eq!(res.hits[0].id, out.id);
}

#[test]
fn reindex_rebuilds_from_files() {
    let mut t = vault();
    let ids_ = seed(&mut t.vault);
    let report = t.vault.reindex().unwrap();
    assert_eq!(report.added, ids_.len());
    let st = t.vault.stats().unwrap();
    assert_eq!((st.index.notes, st.index.with_vector, st.files), (6, 6, 6));
    assert_eq!(ids(&mut t.vault, "mutex await deadlock").first(), Some(&ids_[4]));
}

/// Regression (torture run, finding 5): every field of a note is redacted, the kind too, and no
/// secret reaches the note file, the index or the index's write-ahead log.
#[test]
fn every_field_of_a_note_is_redacted_on_every_path_into_the_vault() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("vault");
    let index = home.path().join("idx.db");
    let mut v = Vault::open(config(&dir, &index)).unwrap();
    let secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let out = v
        .add(NewNote {
            kind: Kind::parse(&format!("token={secret}")),
            title: format!("Deploy with {secret}"),
            tags: vec![format!("t-{secret}")],
            project: Some(format!("p {secret}")),
            source: Some(format!("s {secret}")),
            body: format!("credentials:\n  password: Xq9#mZ2vLp\nAlso {secret}."),
        })
        .unwrap();
    let file = std::fs::read_to_string(&out.path).unwrap();
    assert!(!file.contains(secret) && !file.contains("Xq9#mZ2vLp"), "{file}");
    for f in [index.clone(), index.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&f) {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "secret in {}", f.display());
            assert!(!bytes.windows(10).any(|w| w == b"Xq9#mZ2vLp"), "secret in {}", f.display());
        }
    }
}
