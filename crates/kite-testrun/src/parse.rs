//! Test runners' reports, read into one [`Failure`] per failing test.
//!
//! Each parser reads what its runner writes for machines where it has such a format (go test's
//! `-json` events, jest's and vitest's `--json` report, JUnit XML from pytest, surefire and
//! gradle) and the stable human output where it has none (libtest's and ExUnit's). Names, files
//! and messages are made stable across runs (no thread ids, durations, absolute paths or colour
//! codes), because the failure's name is the task's dedup key and its message the task's body: a
//! message that changed every run would re-file the task every round.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::TestrunError;

/// One failing test (or a build that failed, named `build`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub name: String,
    /// Relative to the repository root, when the report says where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub message: String,
}

/// What a report says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub failures: Vec<Failure>,
    pub passed: u64,
    pub failed: u64,
    /// The passing tests by name, named as failures are, so that two runs compare test by test
    /// (which tests were added, now pass, broke). Empty when `by_name` is false: the runner's
    /// report gives counts only (mix), and two runs compare by counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passing: Vec<String>,
    #[serde(default)]
    pub by_name: bool,
}

/// Lines of a failure's message kept.
const MESSAGE_LINES: usize = 20;

macro_rules! re {
    ($name:ident, $re:literal) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($re).expect("a valid pattern"));
    };
}

re!(ANSI, r"\x1b\[[0-9;]*[A-Za-z]");
re!(THREAD_ID, r" \(\d+\) panicked at");
re!(PANIC_AT, r"panicked at ([^:\s]+):(\d+):\d+");

/// Colour codes out, trailing blanks out, at most [`MESSAGE_LINES`] lines.
fn clean(lines: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut out: Vec<String> = lines
        .into_iter()
        .map(|l| ANSI.replace_all(l.as_ref(), "").trim_end().to_string())
        .take(MESSAGE_LINES)
        .collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    out.join("\n")
}

/// A path as the report wrote it, relative to `root` when it is under it.
fn relative(path: &str, root: &Path) -> String {
    let p = path.strip_prefix("file://").unwrap_or(path);
    let p = Path::new(p);
    let rel = p.strip_prefix(root).unwrap_or(p);
    rel.to_string_lossy().trim_start_matches("./").to_string()
}

/// libtest's human output (`cargo test --no-fail-fast`): `test NAME ... FAILED` lines, the
/// `---- NAME stdout ----` sections with the panic's location and message, and, when nothing
/// compiled, the compiler's first errors as one `build` failure. Names are prefixed with the test
/// target (`calc::tests::adds`, `api::panics`), as a backtrace names them.
pub fn cargo(out: &str) -> Report {
    re!(
        RUNNING,
        r"^\s+Running (?:unittests )?\S+ \((?:.*/)?([A-Za-z0-9_]+)-[0-9a-f]+(?:\.exe)?\)$"
    );
    re!(RESULT, r"^test (\S+) \.\.\. (ok|FAILED|ignored)");
    re!(SECTION, r"^---- (\S+) stdout ----$");
    re!(BUILD_ERROR, r"^error(\[E\d+\])?: ");
    re!(ARROW, r"^\s*--> ([^:]+):(\d+)");
    let mut r = Report::default();
    let mut target = String::new();
    let mut section: Option<String> = None;
    let mut messages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut locations: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut in_panic = false;
    let mut in_trace = false;
    let mut order: Vec<String> = Vec::new();
    let mut build: Vec<String> = Vec::new();
    let mut build_at: Option<(String, u64)> = None;
    let mut in_build = false;
    for line in out.lines() {
        let line = ANSI.replace_all(line, "");
        let line = line.as_ref();
        if let Some(c) = RUNNING.captures(line) {
            target = c[1].to_string();
            section = None;
            continue;
        }
        if let Some(c) = RESULT.captures(line) {
            match &c[2] {
                "ok" => {
                    r.passed += 1;
                    r.passing.push(qualify(&target, &c[1]));
                }
                "FAILED" => {
                    r.failed += 1;
                    let name = qualify(&target, &c[1]);
                    if !order.contains(&name) {
                        order.push(name);
                    }
                }
                _ => {}
            }
            continue;
        }
        if let Some(c) = SECTION.captures(line) {
            section = Some(qualify(&target, &c[1]));
            (in_panic, in_trace) = (false, false);
            continue;
        }
        if line == "failures:" || line.starts_with("test result:") {
            section = None;
            continue;
        }
        if let Some(name) = &section {
            if let Some(c) = PANIC_AT.captures(line) {
                locations
                    .entry(name.clone())
                    .or_insert_with(|| (c[1].to_string(), c[2].parse().unwrap_or(0)));
                in_panic = true;
                continue;
            }
            // A backtrace runs up to its closing `note:`; none of it is the message.
            if line.starts_with("stack backtrace:") {
                (in_panic, in_trace) = (false, true);
                continue;
            }
            if line.starts_with("note: ") {
                (in_panic, in_trace) = (false, false);
                continue;
            }
            if in_trace {
                continue;
            }
            let m = messages.entry(name.clone()).or_default();
            // Output the test printed before it panicked stays too, but the panic message leads.
            if in_panic || !line.trim().is_empty() {
                m.push(THREAD_ID.replace(line, " panicked at").into_owned());
            }
            continue;
        }
        if BUILD_ERROR.is_match(line)
            && !line.starts_with("error: test failed")
            && !line.contains("targets failed")
        {
            in_build = !line.starts_with("error: could not compile");
            if in_build && build.len() < MESSAGE_LINES {
                build.push(line.to_string());
            }
            continue;
        }
        if in_build {
            if let Some(c) = ARROW.captures(line) {
                build_at.get_or_insert_with(|| (c[1].to_string(), c[2].parse().unwrap_or(0)));
            }
            if line.is_empty() {
                in_build = false;
            } else if build.len() < MESSAGE_LINES {
                build.push(line.to_string());
            }
        }
    }
    for name in order {
        let (file, line) = locations
            .remove(&name)
            .map_or((None, None), |(f, l)| (Some(f), Some(l)));
        let message = clean(messages.remove(&name).unwrap_or_default());
        r.failures.push(Failure {
            name,
            file,
            line,
            message,
        });
    }
    if r.failures.is_empty() && !build.is_empty() {
        let (file, line) = build_at.map_or((None, None), |(f, l)| (Some(f), Some(l)));
        r.failures.push(Failure {
            name: "build".into(),
            file,
            line,
            message: clean(build),
        });
    }
    r.by_name = true;
    r
}

fn qualify(target: &str, test: &str) -> String {
    if target.is_empty() {
        test.to_string()
    } else {
        format!("{target}::{test}")
    }
}

/// `go test -json ./...` events (test2json). A parent test that fails only because a subtest
/// did is left out (the subtest is the work), and a package that did not build is one failure
/// named `build <package>` with the compiler's output. `module` (go.mod's module path) maps
/// packages to directories, so `calc_test.go:12` becomes `pkg/calc/calc_test.go`.
pub fn go_json(out: &str, module: &str) -> Report {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Event {
        action: String,
        #[serde(default)]
        package: String,
        #[serde(default)]
        test: Option<String>,
        #[serde(default)]
        output: Option<String>,
        #[serde(default)]
        import_path: Option<String>,
        #[serde(default)]
        failed_build: Option<String>,
    }
    re!(AT, r"^\s+([A-Za-z0-9_.\-/]+\.go):(\d+): ?(.*)$");
    let mut r = Report::default();
    let mut output: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut build_output: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut failed_builds: Vec<String> = Vec::new();
    for line in out.lines() {
        let Ok(e) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        match (e.action.as_str(), e.test) {
            ("output", Some(t)) => {
                let o = e.output.unwrap_or_default();
                output
                    .entry((e.package, t))
                    .or_default()
                    .push(o.trim_end_matches('\n').to_string());
            }
            ("build-output", _) => {
                let key = e.import_path.unwrap_or_default();
                let pkg = key.split(' ').next().unwrap_or_default().to_string();
                build_output
                    .entry(pkg)
                    .or_default()
                    .push(e.output.unwrap_or_default().trim_end().to_string());
            }
            ("pass", Some(t)) => {
                r.passed += 1;
                let short = e
                    .package
                    .rsplit('/')
                    .next()
                    .unwrap_or(&e.package)
                    .to_string();
                r.passing.push(format!("{short}.{t}"));
            }
            ("fail", Some(t)) => failed.push((e.package, t)),
            ("fail", None) => {
                if let Some(b) = e.failed_build {
                    let pkg = b.split(' ').next().unwrap_or_default().to_string();
                    if !failed_builds.contains(&pkg) {
                        failed_builds.push(pkg);
                    }
                }
            }
            _ => {}
        }
    }
    let failed_set: HashSet<&(String, String)> = failed.iter().collect();
    let dir_of = |pkg: &str| -> String {
        pkg.strip_prefix(module)
            .map(|d| d.trim_start_matches('/').to_string())
            .unwrap_or_default()
    };
    for key in &failed {
        let (pkg, test) = key;
        let has_failed_child = failed_set
            .iter()
            .any(|(p, t)| p == pkg && t.starts_with(&format!("{test}/")));
        if has_failed_child {
            continue;
        }
        r.failed += 1;
        let lines = output.remove(key).unwrap_or_default();
        let mut at = None;
        let body: Vec<String> = lines
            .iter()
            .filter(|l| {
                !l.starts_with("=== ")
                    && !l.trim_start().starts_with("--- FAIL")
                    && !l.trim_start().starts_with("--- PASS")
            })
            .map(|l| {
                if let Some(c) = AT.captures(l) {
                    at.get_or_insert_with(|| (c[1].to_string(), c[2].parse::<u64>().unwrap_or(0)));
                }
                l.trim().to_string()
            })
            .collect();
        let dir = dir_of(pkg);
        let (file, line) = match at {
            Some((f, l)) if dir.is_empty() => (Some(f), Some(l)),
            Some((f, l)) => (Some(format!("{dir}/{f}")), Some(l)),
            None => (None, None),
        };
        let short = pkg.rsplit('/').next().unwrap_or(pkg);
        r.failures.push(Failure {
            name: format!("{short}.{test}"),
            file,
            line,
            message: clean(body),
        });
    }
    for pkg in failed_builds {
        let lines = build_output.remove(&pkg).unwrap_or_default();
        let at = lines.iter().find_map(|l| {
            let c = Regex::new(r"^([^\s:#]+\.go):(\d+)").ok()?.captures(l)?;
            Some((c[1].to_string(), c[2].parse::<u64>().unwrap_or(0)))
        });
        let (file, line) = at.map_or((None, None), |(f, l)| {
            (Some(f.trim_start_matches("./").to_string()), Some(l))
        });
        r.failures.push(Failure {
            name: format!("build {pkg}"),
            file,
            line,
            message: clean(lines),
        });
    }
    r.by_name = true;
    r
}

/// jest's `--json` report, and vitest's `--reporter=json` (the same shape). Names are the test's
/// full name (describe blocks included); a test file that failed to load is one failure named by
/// the file. Stack frames outside the test file are dropped.
pub fn jest_json(report: &str, root: &Path) -> Result<Report, TestrunError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Top {
        #[serde(default)]
        test_results: Vec<Suite>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Suite {
        name: String,
        #[serde(default)]
        status: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        assertion_results: Vec<Case>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Case {
        full_name: String,
        status: String,
        #[serde(default)]
        failure_messages: Vec<String>,
        #[serde(default)]
        location: Option<Location>,
    }
    #[derive(Deserialize)]
    struct Location {
        line: u64,
    }
    let top: Top = serde_json::from_str(report).map_err(|e| TestrunError::BadReport {
        format: "a jest/vitest JSON report",
        why: e.to_string(),
    })?;
    let mut r = Report::default();
    for s in top.test_results {
        let file = relative(&s.name, root);
        if s.assertion_results.is_empty() && s.status == "failed" {
            r.failed += 1;
            let message = clean(keep_frames(&ANSI.replace_all(&s.message, ""), &s.name));
            r.failures.push(Failure {
                name: file.clone(),
                file: Some(file),
                line: None,
                message,
            });
            continue;
        }
        for c in s.assertion_results {
            match c.status.as_str() {
                "passed" => {
                    r.passed += 1;
                    r.passing.push(c.full_name.clone());
                }
                "failed" => {
                    r.failed += 1;
                    let text = ANSI
                        .replace_all(&c.failure_messages.join("\n"), "")
                        .into_owned();
                    let line = c
                        .location
                        .map(|l| l.line)
                        .or_else(|| frame_line(&text, &s.name));
                    let message = clean(keep_frames(&text, &s.name));
                    r.failures.push(Failure {
                        name: c.full_name,
                        file: Some(file.clone()),
                        line,
                        message,
                    });
                }
                _ => {}
            }
        }
    }
    r.by_name = true;
    Ok(r)
}

/// The message's lines, with stack frames (`    at ...`) kept only when they are in the test file
/// (and with its path made relative, so the scratch directory does not show).
fn keep_frames(text: &str, test_file: &str) -> Vec<String> {
    let dir = Path::new(test_file)
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("at ") || l.contains(test_file))
        .map(|l| {
            if dir.is_empty() {
                l.to_string()
            } else {
                l.replace(&format!("{dir}/"), "")
            }
        })
        .collect()
}

/// The line of the first stack frame in the test file.
fn frame_line(text: &str, test_file: &str) -> Option<u64> {
    let at = text.find(&format!("{test_file}:"))? + test_file.len() + 1;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// JUnit XML: pytest's `--junitxml`, surefire's `TEST-*.xml`, gradle's `test-results`. A
/// `<testsuites>` or a lone `<testsuite>`; `<failure>` and `<error>` both count. The location
/// comes from the report's `file`/`line` attributes when it has them, else from the failure
/// text: pytest's `tests/test_x.py:8: AssertionError`, or a Java frame `at pkg.Class.m(Class.java:14)`
/// resolved through `find` (a relative path that exists in the repository).
pub fn junit(xml: &str, find: &dyn Fn(&str) -> Option<String>) -> Result<Report, TestrunError> {
    re!(PY_AT, r"(?m)^([^\s:]+\.py):(\d+): ");
    re!(
        JAVA_AT,
        r"at ([\w.$]+)\.[\w$<>]+\(([\w$]+\.(?:java|kt|scala|groovy)):(\d+)\)"
    );
    let doc = roxmltree::Document::parse(xml).map_err(|e| TestrunError::BadReport {
        format: "JUnit XML",
        why: e.to_string(),
    })?;
    let mut r = Report::default();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let bad = case
            .children()
            .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        let Some(bad) = bad else {
            if !case.children().any(|c| c.has_tag_name("skipped")) {
                r.passed += 1;
                let (class, name) = (
                    case.attribute("classname").unwrap_or_default(),
                    case.attribute("name").unwrap_or_default(),
                );
                r.passing.push(if class.is_empty() {
                    name.to_string()
                } else {
                    format!("{class}::{name}")
                });
            }
            continue;
        };
        r.failed += 1;
        let class = case.attribute("classname").unwrap_or_default();
        let name = case.attribute("name").unwrap_or_default();
        let text = bad.text().unwrap_or_default();
        let head = bad.attribute("message").unwrap_or_default();
        let mut file = case.attribute("file").map(str::to_string);
        let mut line = case.attribute("line").and_then(|l| l.parse().ok());
        if file.is_none() {
            if let Some(c) = PY_AT.captures_iter(text).last() {
                file = Some(c[1].to_string());
                line = c[2].parse().ok();
            } else if let Some(c) = JAVA_AT
                .captures_iter(text)
                .find(|c| c[1].starts_with(class) || class.is_empty())
            {
                let pkg_dir = c[1]
                    .rsplit_once('.')
                    .map(|(p, _)| p.replace('.', "/"))
                    .unwrap_or_default();
                let rel = if pkg_dir.is_empty() {
                    c[2].to_string()
                } else {
                    format!("{pkg_dir}/{}", &c[2])
                };
                file = find(&rel).or(Some(rel));
                line = c[3].parse().ok();
            }
        }
        // Python tracebacks name object addresses; they change every run.
        let text = Regex::new(r" at 0x[0-9a-f]+")
            .expect("valid")
            .replace_all(text, "");
        let mut lines: Vec<&str> = Vec::new();
        if !head.is_empty() && !text.contains(head) {
            lines.push(head);
        }
        lines.extend(text.lines().filter(|l| {
            !l.trim_start().starts_with("at org.junit") && !l.trim_start().starts_with("at java.")
        }));
        let full = if class.is_empty() {
            name.to_string()
        } else {
            format!("{class}::{name}")
        };
        r.failures.push(Failure {
            name: full,
            file,
            line,
            message: clean(lines),
        });
    }
    r.by_name = true;
    Ok(r)
}

/// ExUnit's output (`mix test`): numbered failures `  1) test NAME (Module)` followed by the
/// test's `file:line` and the assertion's text.
pub fn mix(out: &str) -> Report {
    re!(HEAD, r"^\s+\d+\) test (.+) \(([\w.]+)\)$");
    re!(AT, r"^\s+(\S+\.exs?):(\d+)$");
    re!(SUMMARY, r"^(\d+) tests?, (\d+) failures?");
    let mut r = Report::default();
    let mut cur: Option<Failure> = None;
    let mut lines: Vec<String> = Vec::new();
    let finish = |cur: &mut Option<Failure>, lines: &mut Vec<String>, r: &mut Report| {
        if let Some(mut f) = cur.take() {
            f.message = clean(lines.drain(..));
            r.failures.push(f);
        }
    };
    let mut total = None;
    for line in out.lines() {
        let line = ANSI.replace_all(line, "");
        if let Some(c) = HEAD.captures(&line) {
            finish(&mut cur, &mut lines, &mut r);
            cur = Some(Failure {
                name: format!("{}: test {}", &c[2], &c[1]),
                file: None,
                line: None,
                message: String::new(),
            });
            continue;
        }
        if let Some(c) = SUMMARY.captures(&line) {
            finish(&mut cur, &mut lines, &mut r);
            total = Some((
                c[1].parse::<u64>().unwrap_or(0),
                c[2].parse::<u64>().unwrap_or(0),
            ));
            continue;
        }
        let Some(f) = cur.as_mut() else { continue };
        if f.file.is_none() {
            if let Some(c) = AT.captures(&line) {
                f.file = Some(c[1].to_string());
                f.line = c[2].parse().ok();
                continue;
            }
        }
        // A failure's text is indented; the next unindented line ends it.
        if !line.is_empty() && !line.starts_with(' ') {
            finish(&mut cur, &mut lines, &mut r);
            continue;
        }
        if line.trim_start().starts_with("stacktrace:") {
            continue;
        }
        lines.push(line.trim().to_string());
    }
    finish(&mut cur, &mut lines, &mut r);
    r.failed = r.failures.len() as u64;
    if let Some((tests, failures)) = total {
        r.passed = tests.saturating_sub(failures);
        // The summary counts failures whose sections were cut from the output as well.
        r.failed = r.failed.max(failures);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The passing tests are named, one per pass, in the failures' naming, never both.
    fn passing_by_name(r: &Report) -> Vec<String> {
        assert!(r.by_name, "{r:?}");
        assert_eq!(r.passing.len() as u64, r.passed, "{r:?}");
        assert!(
            r.passing
                .iter()
                .all(|p| !r.failures.iter().any(|f| &f.name == p)),
            "{r:?}"
        );
        r.passing.clone()
    }

    #[test]
    fn cargo_failures_with_panic_locations_from_real_output() {
        let r = cargo(&fixture("cargo-failures.txt"));
        assert_eq!((r.passed, r.failed), (1, 2));
        let passing = passing_by_name(&r);
        assert!(
            passing[0].starts_with("calc::"),
            "named by its target, as failures are: {passing:?}"
        );
        let names: Vec<&str> = r.failures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["calc::tests::adds_wrong", "api::panics_in_integration"]
        );
        let f = &r.failures[0];
        assert_eq!((f.file.as_deref(), f.line), (Some("src/lib.rs"), Some(8)));
        assert!(
            f.message
                .starts_with("assertion `left == right` failed: two and two"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("left: 4") && !f.message.contains("rust_begin_unwind"),
            "{}",
            f.message
        );
        assert!(
            !f.message.contains("18452"),
            "thread ids change every run: {}",
            f.message
        );
        let g = &r.failures[1];
        assert_eq!((g.file.as_deref(), g.line), (Some("tests/api.rs"), Some(2)));
        assert_eq!(
            g.message,
            "index out of bounds: the len is 0 but the index is 3"
        );
    }

    #[test]
    fn cargo_build_error_is_one_build_failure() {
        let r = cargo(&fixture("cargo-build-error.txt"));
        assert_eq!(r.failures.len(), 1);
        let f = &r.failures[0];
        assert_eq!(f.name, "build");
        assert_eq!((f.file.as_deref(), f.line), (Some("src/lib.rs"), Some(1)));
        assert!(
            f.message
                .starts_with("error[E0425]: cannot find value `c` in this scope"),
            "{}",
            f.message
        );
        assert!(!f.message.contains("could not compile"), "{}", f.message);
    }

    #[test]
    fn pytest_junit_from_real_output() {
        let r = junit(&fixture("pytest-junit.xml"), &|_| None).unwrap();
        assert_eq!((r.passed, r.failed), (1, 2));
        assert!(
            passing_by_name(&r)[0].starts_with("tests.test_calc"),
            "{r:?}"
        );
        let f = &r.failures[0];
        assert_eq!(f.name, "tests.test_calc::test_add_wrong");
        assert_eq!(
            (f.file.as_deref(), f.line),
            (Some("tests/test_calc.py"), Some(8))
        );
        assert!(
            f.message.contains("AssertionError: two and two"),
            "{}",
            f.message
        );
        let g = &r.failures[1];
        assert_eq!(g.name, "tests.test_calc.TestGroup::test_raises");
        assert_eq!(g.line, Some(12));
        assert!(
            !g.message.contains("0x7fe"),
            "object addresses change every run: {}",
            g.message
        );
    }

    #[test]
    fn surefire_junit_resolves_the_java_file() {
        let find = |rel: &str| Some(format!("core/src/test/java/{rel}"));
        let r = junit(&fixture("surefire-TEST-com.example.CalcTest.xml"), &find).unwrap();
        assert_eq!((r.passed, r.failed), (1, 2));
        assert!(
            passing_by_name(&r)[0].starts_with("com.example.CalcTest::"),
            "{r:?}"
        );
        let f = &r.failures[0];
        assert_eq!(f.name, "com.example.CalcTest::addsWrong");
        assert_eq!(
            (f.file.as_deref(), f.line),
            (
                Some("core/src/test/java/com/example/CalcTest.java"),
                Some(14)
            )
        );
        assert!(
            f.message.contains("expected: <5> but was: <4>"),
            "{}",
            f.message
        );
        assert!(!f.message.contains("org.junit"), "{}", f.message);
        assert_eq!(r.failures[1].name, "com.example.CalcTest::throws");
        assert!(junit("<nope", &|_| None)
            .unwrap_err()
            .to_string()
            .contains("not JUnit XML"));
    }

    #[test]
    fn jest_and_vitest_json_from_real_output() {
        for (file, root, line) in [
            ("jest.json", "/tmp/rt/js", 4),
            ("vitest.json", "/tmp/rt/vt", 5),
        ] {
            let r = jest_json(&fixture(file), Path::new(root)).unwrap();
            assert_eq!((r.passed, r.failed), (1, 1), "{file}");
            assert_eq!(passing_by_name(&r).len(), 1, "{file}");
            let f = &r.failures[0];
            assert_eq!(f.name, "math adds wrong");
            assert_eq!(
                (f.file.as_deref(), f.line),
                (Some("src/sum.test.js"), Some(line)),
                "{file}"
            );
            assert!(
                !f.message.contains("node_modules") && !f.message.contains(root),
                "{file}: {}",
                f.message
            );
            assert!(f.message.contains("sum.test.js:"), "{file}: {}", f.message);
        }
        let e = jest_json("{\"testResults\": 3}", Path::new("/")).unwrap_err();
        assert!(
            e.to_string().contains("not a jest/vitest JSON report"),
            "{e}"
        );
    }

    #[test]
    fn go_json_leaf_subtests_and_build_failures() {
        let r = go_json(&fixture("go-test.jsonl"), "example.com/calc");
        let names: Vec<&str> = r.failures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "calc.TestAddWrong",
                "calc.TestTable/big",
                "build example.com/calc/broken"
            ]
        );
        assert_eq!(r.failed, 2);
        assert!(
            passing_by_name(&r)
                .iter()
                .all(|p| p.starts_with("calc.Test")),
            "{r:?}"
        );
        let f = &r.failures[0];
        assert_eq!(
            (f.file.as_deref(), f.line),
            (Some("calc_test.go"), Some(12))
        );
        assert_eq!(f.message, "calc_test.go:12: add(2, 2) = 4, want 5");
        assert_eq!(r.failures[1].file.as_deref(), Some("calc_test.go"));
        let b = &r.failures[2];
        assert_eq!((b.file.as_deref(), b.line), (Some("broken/x.go"), Some(3)));
        assert!(b.message.contains("undefined: y"), "{}", b.message);
    }

    #[test]
    fn mix_numbered_failures() {
        let r = mix(&fixture("mix-test.txt"));
        assert_eq!((r.passed, r.failed), (2, 2));
        assert!(
            !r.by_name && r.passing.is_empty(),
            "mix gives counts only: compared by count"
        );
        let f = &r.failures[0];
        assert_eq!(f.name, "CalcTest: test adds wrong");
        assert_eq!(
            (f.file.as_deref(), f.line),
            (Some("test/calc_test.exs"), Some(9))
        );
        assert!(
            f.message.starts_with("Assertion with == failed"),
            "{}",
            f.message
        );
        assert!(f.message.contains("right: 5"), "{}", f.message);
        assert_eq!(r.failures[1].name, "CalcTest: test raises");
    }
}
