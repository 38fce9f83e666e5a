//! kite-testrun: find a project's test runner, run it in a scratch worktree when the tree
//! changed, and read its results ([`parse`]). The strategy loop's `tests` source and the merge
//! queue's verify both build on it, which is why it is a crate of its own beneath both.
//!
//! Why a scratch worktree: running a project's tests in the person's checkout would fight their
//! own build (cargo's lock on `target/`, jest's cache, files the tests write), so kite checks the
//! working state out into a worktree of its own under `<KITE_HOME>/scratch/` and runs there.
//! The working state (HEAD plus staged, unstaged and untracked files, ignored ones left out)
//! becomes a tree object written through a temporary index, so the person's index is never
//! touched; that tree's id is the run's key, and a round whose key matches the last run's
//! reuses its result instead of running the tests again. Build outputs in the scratch worktree
//! (ignored files) are kept between runs, so the second run is an incremental one.
//!
//! A `[sched.providers.tests]` command in kite.toml wins over all of this.

pub mod delta;
mod error;
pub mod parse;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::TestrunError;
pub use parse::{Failure, Report};

use kite_git::proc::{self, Exit, Shell};
use kite_git::{git_with, GitOptions};

/// What a built-in context provider gave: its context, or why it cannot run for this project or
/// on this machine (no test runner, no `gh`): a reason to skip the templates that need it, not an
/// error. (Defined here, beneath the strategy loop, because the `tests` provider is here.)
#[derive(Debug, Clone, PartialEq)]
pub enum Provided {
    Context(Value),
    Unavailable(String),
}

/// A runner kite knows, and how to run and read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    /// `cargo`, `go`, `pytest`, `jest`, `vitest`, `mix`, `maven`, `gradle`.
    pub name: String,
    /// Run with `sh -c` in the scratch worktree; `{report}` is replaced by the report file.
    pub command: String,
    pub format: Format,
    /// Why kite thinks this is the project's runner (`Cargo.toml`, `package.json: "test": "vitest"`).
    pub because: String,
}

/// Where a runner's results are read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// libtest's human output on stdout.
    CargoText,
    /// `go test -json` events on stdout; the module path maps packages to directories.
    GoJson { module: String },
    /// A jest/vitest JSON report written to `{report}`.
    JestJson,
    /// A JUnit XML report written to `{report}`.
    JunitFile,
    /// JUnit XML files under these directories of the worktree (surefire, gradle).
    JunitDirs { dirs: Vec<String> },
    /// ExUnit's human output on stdout.
    MixText,
}

fn read(root: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(root.join(file)).ok()
}

/// The project's test runner, from the files at its root; `None` when kite knows none.
pub fn detect(root: &Path) -> Option<Runner> {
    let runner = |name: &str, command: String, format: Format, because: &str| {
        Some(Runner {
            name: name.into(),
            command,
            format,
            because: because.into(),
        })
    };
    if let Some(toml) = read(root, "Cargo.toml") {
        let ws = if toml.contains("[workspace]") {
            " --workspace"
        } else {
            ""
        };
        return runner(
            "cargo",
            // One stream: the `Running <target>` lines (stderr) must stay beside their tests (stdout).
            format!("cargo test{ws} --no-fail-fast --color never 2>&1"),
            Format::CargoText,
            "Cargo.toml",
        );
    }
    if let Some(gomod) = read(root, "go.mod") {
        let module = gomod
            .lines()
            .find_map(|l| l.trim().strip_prefix("module "))
            .map(|m| m.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        return runner(
            "go",
            "go test -json ./... 2>&1".into(),
            Format::GoJson { module },
            "go.mod",
        );
    }
    if let Some(pkg) = read(root, "package.json") {
        let v: Value = serde_json::from_str(&pkg).unwrap_or(Value::Null);
        let script = v["scripts"]["test"].as_str().unwrap_or_default();
        let has = |dep: &str| {
            ["devDependencies", "dependencies"]
                .iter()
                .any(|k| v[k].get(dep).is_some())
                || script.contains(dep)
        };
        let exec = if root.join("pnpm-lock.yaml").exists() {
            "pnpm exec"
        } else if root.join("yarn.lock").exists() {
            "yarn"
        } else {
            "npx --no-install"
        };
        if has("vitest") {
            let cmd = format!("{exec} vitest run --reporter=json --outputFile={{report}}");
            return runner("vitest", cmd, Format::JestJson, "package.json names vitest");
        }
        if has("jest") {
            let cmd =
                format!("{exec} jest --json --outputFile={{report}} --testLocationInResults --ci");
            return runner("jest", cmd, Format::JestJson, "package.json names jest");
        }
    }
    let pytest_config = ["pytest.ini", "conftest.py", "tests/conftest.py"]
        .iter()
        .find(|f| root.join(f).exists())
        .copied();
    let pyproject = read(root, "pyproject.toml").filter(|t| t.contains("pytest"));
    let setup_cfg = read(root, "setup.cfg").filter(|t| t.contains("[tool:pytest]"));
    let tox = read(root, "tox.ini").filter(|t| t.contains("[pytest]"));
    if pytest_config.is_some() || pyproject.is_some() || setup_cfg.is_some() || tox.is_some() {
        // The project's own virtual environment when it has one in the tree.
        let python = [".venv/bin/python", "venv/bin/python"]
            .iter()
            .map(|p| root.join(p))
            .find(|p| p.exists())
            .map_or("python3".to_string(), |p| p.display().to_string());
        let because = pytest_config.unwrap_or(if pyproject.is_some() {
            "pyproject.toml names pytest"
        } else {
            "setup.cfg/tox.ini [pytest]"
        });
        let cmd = format!("{python} -m pytest -q -p no:cacheprovider --junitxml={{report}}");
        return runner("pytest", cmd, Format::JunitFile, because);
    }
    if root.join("mix.exs").exists() {
        return runner("mix", "mix test 2>&1".into(), Format::MixText, "mix.exs");
    }
    if root.join("pom.xml").exists() {
        let mvn = if root.join("mvnw").exists() {
            "./mvnw"
        } else {
            "mvn"
        };
        let cmd = format!("{mvn} -B -q test -Dmaven.test.failure.ignore=true");
        return runner(
            "maven",
            cmd,
            Format::JunitDirs {
                dirs: vec!["target/surefire-reports".into()],
            },
            "pom.xml",
        );
    }
    if ["build.gradle", "build.gradle.kts"]
        .iter()
        .any(|f| root.join(f).exists())
    {
        let gradle = if root.join("gradlew").exists() {
            "./gradlew"
        } else {
            "gradle"
        };
        let cmd = format!("{gradle} test --continue -q");
        return runner(
            "gradle",
            cmd,
            Format::JunitDirs {
                dirs: vec!["build/test-results/test".into()],
            },
            "build.gradle",
        );
    }
    None
}

/// `[sched.tests]`: the built-in tests provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestsConfig {
    /// Detect and run the project's test runner when a template needs `tests` and no
    /// `[sched.providers.tests]` is configured.
    pub detect: bool,
    /// Longest a run may take; a run that times out is reported and its result not kept.
    #[serde(with = "kite_core::duration::serde_human")]
    pub timeout: Duration,
    /// Replaces the detected command (same `{report}` placeholder); the format stays detected.
    pub command: Option<String>,
}

impl Default for TestsConfig {
    fn default() -> Self {
        TestsConfig {
            detect: true,
            timeout: Duration::from_secs(20 * 60),
            command: None,
        }
    }
}

/// The last run, kept in the scratch directory so a restart does not run the tests again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub tree: String,
    pub runner: String,
    pub exit: String,
    pub seconds: f64,
    pub report: Report,
}

/// A git command with extra environment; stdout on success.
async fn git(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Result<String, TestrunError> {
    Ok(git_with(cwd, args, GitOptions { env, timeout: None }).await?)
}

/// The working state as a tree object, written through a copy of the index so the person's
/// index is not touched: HEAD's files with every change, staged or not, and untracked files
/// that are not ignored. `None` in a repository with no commit yet.
pub async fn working_tree(repo: &Path, scratch: &Path) -> Result<Option<String>, TestrunError> {
    if git(repo, &["rev-parse", "-q", "--verify", "HEAD"], &[])
        .await
        .is_err()
    {
        return Ok(None);
    }
    let index = git(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
        &[],
    )
    .await?;
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(|source| TestrunError::Io {
            path: scratch.display().to_string(),
            source,
        })?;
    let tmp = scratch.join("index.tmp");
    // Copying the index keeps its stat cache: `add -A` then hashes only what changed. The copy
    // keeps the index's own mtime too: git trusts an entry's stat only when the file was not
    // modified after the index was written ("racy git"), and a copy stamped now would make a
    // same-size edit made just before look unchanged.
    match tokio::fs::copy(&index, &tmp).await {
        Ok(_) => {
            let stamped = std::fs::metadata(&index)
                .and_then(|m| m.modified())
                .and_then(|t| {
                    std::fs::File::options()
                        .write(true)
                        .open(&tmp)?
                        .set_modified(t)
                });
            if let Err(source) = stamped {
                return Err(TestrunError::Io {
                    path: format!("copy {index}"),
                    source,
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(TestrunError::Io {
                path: format!("copy {index}"),
                source,
            })
        }
    }
    let env = [("GIT_INDEX_FILE", tmp.to_string_lossy().into_owned())];
    let out = async {
        git(repo, &["add", "-A", "--", "."], &env).await?;
        git(repo, &["write-tree"], &env).await
    }
    .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    out.map(Some)
}

/// The scratch directory of a repository under `state_dir` (`<KITE_HOME>`): one per repository.
pub fn scratch_dir(state_dir: &Path, repo: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    repo.hash(&mut h);
    let name = repo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    state_dir
        .join("scratch")
        .join(format!("{name}-{:08x}", h.finish() as u32))
}

/// Checks `tree` out in the scratch worktree (created on first use), removing untracked files
/// but keeping ignored ones (build outputs), so the run sees exactly the working state.
async fn checkout(repo: &Path, wt: &Path, tree: &str) -> Result<(), TestrunError> {
    let head = git(repo, &["rev-parse", "HEAD"], &[]).await?;
    // An identity of kite's own: the person may have none configured, and this commit is
    // never on a branch of theirs.
    let who: Vec<(&str, String)> = ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"]
        .into_iter()
        .map(|k| (k, "kite".to_string()))
        .chain(
            ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"]
                .into_iter()
                .map(|k| (k, "kite@localhost".to_string())),
        )
        .collect();
    let commit = git(
        repo,
        &[
            "commit-tree",
            tree,
            "-p",
            &head,
            "-m",
            "kite: working state for a test run",
        ],
        &who,
    )
    .await?;
    if !wt.join(".git").exists() {
        // `-f` takes over a registered path that is missing (no `worktree prune`, which would
        // forget a person's worktree that is only unmounted).
        let wt_s = wt.to_string_lossy().into_owned();
        let _turn = kite_git::worktree::turn().await;
        git(
            repo,
            &["worktree", "add", "--detach", "-f", &wt_s, &commit],
            &[],
        )
        .await?;
    } else {
        git(wt, &["checkout", "--detach", "-f", &commit], &[]).await?;
        git(wt, &["clean", "-fdq"], &[]).await?;
    }
    Ok(())
}

/// Top-level ignored directories that are build outputs or caches: never linked, so a run in
/// kite's worktree builds into its own and never writes into the person's.
const NOT_LINKED: &[&str] = &[
    "target",
    "build",
    "dist",
    "out",
    "_build",
    ".kite",
    ".git",
    "coverage",
    ".gradle",
    ".next",
    ".nuxt",
    ".cache",
    ".pytest_cache",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    ".turbo",
    ".parcel-cache",
];

/// What a person installed in their checkout for the tests to run, linked into kite's worktree
/// (scratch or merge): the top-level directories git ignores (a checkout does not carry them:
/// `node_modules`, a `.venv`, mix's `deps`, downloaded models), except build outputs and caches
/// ([`NOT_LINKED`]), which stay the worktree's own.
pub async fn link_installed(repo: &Path, wt: &Path) {
    let listed = git(
        repo,
        &[
            "ls-files",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
            "--no-empty-directory",
        ],
        &[],
    )
    .await
    .unwrap_or_default();
    for line in listed.lines() {
        let dir = line.trim_end_matches('/');
        if dir.is_empty() || dir.contains('/') || !line.ends_with('/') || NOT_LINKED.contains(&dir)
        {
            continue;
        }
        let (from, to) = (repo.join(dir), wt.join(dir));
        if from.is_dir() && tokio::fs::symlink_metadata(&to).await.is_err() {
            if let Err(e) = tokio::fs::symlink(&from, &to).await {
                tracing::debug!(dir, "not linked into kite's worktree: {e}");
            }
        }
    }
}

/// Runs the tests if the working state changed since the last run; the result as the `tests`
/// context: `{runner, because, tree, cached, exit, seconds, failed, passed, failures: [...]}`.
/// No runner found, or no commit yet, is [`Provided::Unavailable`].
pub async fn tests_context(
    repo: &Path,
    state_dir: &Path,
    cfg: &TestsConfig,
) -> Result<Provided, TestrunError> {
    let Some(mut runner) = detect(repo) else {
        return Ok(Provided::Unavailable(
            "no test runner found (cargo, go, pytest, jest, vitest, mix, maven, gradle); \
             set [sched.providers.tests] in kite.toml to name one"
                .into(),
        ));
    };
    if let Some(c) = &cfg.command {
        runner.command = c.clone();
    }
    let scratch = scratch_dir(state_dir, repo);
    let Some(tree) = working_tree(repo, &scratch).await? else {
        return Ok(Provided::Unavailable(
            "the repository has no commit yet; the tests run once it has one".into(),
        ));
    };
    let last_file = scratch.join("last-run.json");
    let last: Option<LastRun> = tokio::fs::read(&last_file)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(last) = last.filter(|l| l.tree == tree && l.runner == runner.name) {
        tracing::debug!(tree = %tree, "tests: the tree has not changed since the last run");
        return Ok(Provided::Context(context(&runner, &last, true)));
    }
    let wt = scratch.join("worktree");
    checkout(repo, &wt, &tree).await?;
    link_installed(repo, &wt).await;
    let report_file = scratch.join(match runner.format {
        Format::JunitFile => "report.xml",
        _ => "report.json",
    });
    let _ = tokio::fs::remove_file(&report_file).await;
    let command = runner
        .command
        .replace("{report}", &shell_quote(&report_file.to_string_lossy()));
    tracing::info!(runner = %runner.name, command = %command, tree = %tree, "tests: running in the scratch worktree");
    let started = Instant::now();
    let o = proc::run(Shell {
        command: proc::Program::Sh(&command),
        cwd: &wt,
        env: vec![
            ("CI".into(), "1".into()),
            ("RUST_BACKTRACE".into(), "0".into()),
            ("CARGO_TERM_COLOR".into(), "never".into()),
            ("FORCE_COLOR".into(), "0".into()),
            ("NO_COLOR".into(), "1".into()),
            // Never the person's target directory, even when they set one for every project.
            (
                "CARGO_TARGET_DIR".into(),
                scratch.join("target").to_string_lossy().into_owned(),
            ),
        ],
        stdin: None,
        timeout: Some(cfg.timeout),
        cap: 16 << 20,
    })
    .await
    .map_err(|source| TestrunError::Spawn {
        command: command.clone(),
        source,
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if o.exit == Exit::TimedOut {
        return Err(TestrunError::TimedOut {
            command,
            limit: kite_core::duration::format_duration(cfg.timeout),
        });
    }
    let both = format!("{}\n{}", o.stdout, o.stderr);
    let report = match &runner.format {
        Format::CargoText => parse::cargo(&both),
        Format::GoJson { module } => parse::go_json(&both, module),
        Format::MixText => parse::mix(&both),
        Format::JestJson | Format::JunitFile => {
            let text = tokio::fs::read_to_string(&report_file).await.map_err(|_| {
                TestrunError::NoReport {
                    command: command.clone(),
                    exit: o.exit,
                    output: proc::tail(both.trim(), 400).into(),
                }
            })?;
            if runner.format == Format::JestJson {
                parse::jest_json(&text, &wt)?
            } else {
                parse::junit(&text, &|rel| find_file(&wt, rel))?
            }
        }
        Format::JunitDirs { dirs } => junit_dirs(&wt, dirs, o.exit, &both)?,
    };
    // A non-zero exit with nothing parsed is a failure kite could not read: say so rather than
    // report a green run.
    if report.failures.is_empty() && !matches!(o.exit, Exit::Code(0)) {
        return Err(TestrunError::Unread {
            command,
            exit: o.exit,
            output: proc::tail(both.trim(), 400).into(),
        });
    }
    let last = LastRun {
        tree,
        runner: runner.name.clone(),
        exit: o.exit.to_string(),
        seconds,
        report,
    };
    if let Ok(b) = serde_json::to_vec_pretty(&last) {
        if let Err(e) = tokio::fs::write(&last_file, b).await {
            tracing::warn!(
                "tests: cannot keep the result in {}: {e}",
                last_file.display()
            );
        }
    }
    tracing::info!(runner = %runner.name, failed = last.report.failed, passed = last.report.passed, seconds, "tests: run finished");
    Ok(Provided::Context(context(&runner, &last, false)))
}

/// `complete` is false when the build failed: no test ran, so the list of failing tests says
/// nothing about the tests that failed before.
fn context(runner: &Runner, last: &LastRun, cached: bool) -> Value {
    let built = !last
        .report
        .failures
        .iter()
        .any(|f| f.name == "build" || f.name.starts_with("build "));
    serde_json::json!({
        "complete": built,
        "runner": runner.name, "because": runner.because, "tree": last.tree, "cached": cached,
        "exit": last.exit, "seconds": last.seconds,
        "failed": last.report.failures.len(), "passed": last.report.passed,
        "failures": last.report.failures,
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A file in the worktree whose path ends with `rel` (a Java class's file), relative to it.
fn find_file(wt: &Path, rel: &str) -> Option<String> {
    fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Option<PathBuf>) {
        if depth == 0 || out.is_some() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.')
                || ["target", "build", "node_modules"].contains(&&*name.to_string_lossy())
            {
                continue;
            }
            if p.is_dir() {
                walk(&p, rel, depth - 1, out);
            } else if p.to_string_lossy().ends_with(&format!("/{rel}")) {
                *out = Some(p);
                return;
            }
        }
    }
    let mut out = None;
    walk(wt, rel, 12, &mut out);
    out.and_then(|p| {
        p.strip_prefix(wt)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    })
}

/// Every `*.xml` under the report directories of every module (one level of nesting for
/// multi-module builds).
fn junit_dirs(
    wt: &Path,
    dirs: &[String],
    exit: Exit,
    output: &str,
) -> Result<Report, TestrunError> {
    let mut roots = vec![wt.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(wt) {
        roots.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let mut report = Report::default();
    let mut files = 0;
    for root in roots {
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(root.join(d)) else {
                continue;
            };
            for e in entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "xml"))
            {
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                let r = parse::junit(&text, &|rel| find_file(wt, rel))?;
                files += 1;
                report.passed += r.passed;
                report.failed += r.failed;
                report.failures.extend(r.failures);
                report.passing.extend(r.passing);
                report.by_name = true;
            }
        }
    }
    if files == 0 {
        return Err(TestrunError::NoReportUnder {
            dirs: dirs.join(", "),
            exit,
            output: proc::tail(output.trim(), 400).into(),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_git::fixture as testutil;

    #[test]
    fn detects_each_runner_from_its_files() {
        let cases: &[(&[(&str, &str)], Option<&str>)] = &[
            (
                &[("Cargo.toml", "[workspace]\nmembers = []\n")],
                Some("cargo"),
            ),
            (
                &[("go.mod", "module example.com/calc\n\ngo 1.22\n")],
                Some("go"),
            ),
            (
                &[("package.json", r#"{"scripts": {"test": "vitest run"}}"#)],
                Some("vitest"),
            ),
            (
                &[("package.json", r#"{"devDependencies": {"jest": "29"}}"#)],
                Some("jest"),
            ),
            (
                &[("package.json", r#"{"scripts": {"build": "tsc"}}"#)],
                None,
            ),
            (
                &[("pyproject.toml", "[tool.pytest.ini_options]\n")],
                Some("pytest"),
            ),
            (&[("tests/conftest.py", "")], Some("pytest")),
            (&[("mix.exs", "")], Some("mix")),
            (&[("pom.xml", "<project/>")], Some("maven")),
            (&[("build.gradle.kts", "")], Some("gradle")),
            (&[("README.md", "")], None),
        ];
        for (files, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            for (f, text) in *files {
                let p = dir.path().join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            let got = detect(dir.path());
            assert_eq!(got.as_ref().map(|r| r.name.as_str()), *want, "{files:?}");
            if let Some(Runner {
                format: Format::GoJson { module },
                ..
            }) = &got
            {
                assert_eq!(module, "example.com/calc");
            }
            if let Some(r) = got.filter(|r| r.name == "cargo") {
                assert!(r.command.contains("--workspace"), "{}", r.command);
            }
        }
    }

    #[tokio::test]
    async fn the_working_state_is_keyed_without_touching_the_index() {
        let repo = testutil::git_repo();
        let state = tempfile::tempdir().unwrap();
        let scratch = scratch_dir(state.path(), repo.path());
        let clean = working_tree(repo.path(), &scratch).await.unwrap().unwrap();
        assert_eq!(
            clean,
            git(repo.path(), &["rev-parse", "HEAD^{tree}"], &[])
                .await
                .unwrap()
        );
        let index = std::fs::read(repo.path().join(".git/index")).unwrap();
        std::fs::write(repo.path().join("new.txt"), "untracked\n").unwrap();
        let dirty = working_tree(repo.path(), &scratch).await.unwrap().unwrap();
        assert_ne!(dirty, clean, "an untracked file changes the key");
        assert_eq!(
            std::fs::read(repo.path().join(".git/index")).unwrap(),
            index,
            "the index is untouched"
        );
        assert_eq!(
            working_tree(repo.path(), &scratch).await.unwrap().unwrap(),
            dirty,
            "same state, same key"
        );
        let status = git(repo.path(), &["status", "--porcelain"], &[])
            .await
            .unwrap();
        assert_eq!(status, "?? new.txt", "the file is still untracked");
    }

    /// A real cargo project with one failing test: the run happens in the scratch worktree with
    /// the uncommitted change, is read into one failure, and is not repeated for the same tree.
    #[tokio::test]
    async fn cargo_project_failures_are_found_in_a_scratch_worktree_and_cached() {
        let repo = testutil::git_repo();
        let p = repo.path();
        std::fs::write(
            p.join("Cargo.toml"),
            "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
        )
        .unwrap();
        std::fs::create_dir_all(p.join("src")).unwrap();
        let lib = "pub fn add(a: i32, b: i32) -> i32 { a + b }\n#[test]\nfn adds() { assert_eq!(add(2, 2), 4); }\n";
        std::fs::write(p.join("src/lib.rs"), lib).unwrap();
        std::fs::write(p.join(".gitignore"), "target/\n").unwrap();
        testutil::git(p, &["add", "-A"]);
        testutil::git(p, &["commit", "-qm", "calc"]);
        // Uncommitted: the change that breaks it.
        std::fs::write(p.join("src/lib.rs"), lib.replace("a + b", "a - b")).unwrap();
        let state = tempfile::tempdir().unwrap();
        let cfg = TestsConfig {
            timeout: Duration::from_secs(300),
            ..Default::default()
        };
        let ctx = |r: Result<Provided, TestrunError>| match r.unwrap() {
            Provided::Context(v) => v,
            Provided::Unavailable(why) => panic!("{why}"),
        };
        let v = ctx(tests_context(p, state.path(), &cfg).await);
        assert_eq!(v["runner"], "cargo");
        assert_eq!(v["cached"], false);
        assert_eq!(v["failures"][0]["name"], "calc::adds", "{v}");
        assert_eq!(v["failures"][0]["file"], "src/lib.rs");
        assert!(
            !p.join("target").exists(),
            "nothing was built in the person's checkout"
        );
        assert!(scratch_dir(state.path(), p).join("target").exists());
        assert_eq!(
            git(p, &["diff", "--name-only"], &[]).await.unwrap(),
            "src/lib.rs",
            "the person's change is still theirs"
        );
        assert_eq!(
            git(p, &["diff", "--cached", "--name-only"], &[])
                .await
                .unwrap(),
            "",
            "and still unstaged"
        );
        let again = ctx(tests_context(p, state.path(), &cfg).await);
        assert_eq!(again["cached"], true);
        assert_eq!(again["failures"], v["failures"]);
        // Fixed: a new tree, a new run, no failure.
        std::fs::write(p.join("src/lib.rs"), lib).unwrap();
        let fixed = ctx(tests_context(p, state.path(), &cfg).await);
        assert_eq!(
            (fixed["cached"].clone(), fixed["failed"].clone()),
            (Value::Bool(false), serde_json::json!(0))
        );
    }

    #[tokio::test]
    async fn installed_directories_are_linked_and_build_outputs_are_not() {
        let repo = testutil::git_repo();
        let p = repo.path();
        testutil::write(p, ".gitignore", ".venv/\nnode_modules/\ntarget/\n");
        testutil::write(p, ".venv/bin/python", "");
        testutil::write(p, "node_modules/x/index.js", "");
        testutil::write(p, "target/debug/junk", "");
        let wt = tempfile::tempdir().unwrap();
        link_installed(p, wt.path()).await;
        assert!(
            wt.path().join(".venv").is_symlink() && wt.path().join("node_modules").is_symlink()
        );
        assert!(
            !wt.path().join("target").exists(),
            "build outputs stay the worktree's own"
        );
    }

    #[tokio::test]
    async fn no_runner_and_no_commit_are_reported() {
        let repo = testutil::git_repo();
        let state = tempfile::tempdir().unwrap();
        let why = |r: Result<Provided, TestrunError>| match r.unwrap() {
            Provided::Unavailable(why) => why,
            Provided::Context(v) => panic!("{v}"),
        };
        let e = why(tests_context(repo.path(), state.path(), &TestsConfig::default()).await);
        assert!(
            e.contains("no test runner found") && e.contains("[sched.providers.tests]"),
            "{e}"
        );
        let empty = tempfile::tempdir().unwrap();
        testutil::git(empty.path(), &["init", "-q"]);
        std::fs::write(empty.path().join("mix.exs"), "").unwrap();
        let e = why(tests_context(empty.path(), state.path(), &TestsConfig::default()).await);
        assert!(e.contains("no commit yet"), "{e}");
    }
}
