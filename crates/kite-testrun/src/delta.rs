//! What a landing did to the tests: its verify run compared with the target's last verify run
//! (the one kept from the previous landing). Test by test where both reports name their passing
//! tests (libtest, `go test -json`, JUnit, jest/vitest JSON), by counts where one does not
//! (ExUnit's summary), and said so. The verify output is read with the same readers as the
//! strategy loop's `tests` source ([`crate::parse`]); output none of them reads is recorded as
//! unreadable, never guessed.

use std::collections::BTreeSet;

use kite_core::TestDelta;

use crate::parse::{self, Report};
use crate::Format;

/// Reads a verify run's output (stdout and stderr together) whose runner is not known (a
/// configured `[merge] verify` command): libtest's summary, go test's JSON events or ExUnit's
/// summary, whichever the output is. `None`: none of them.
pub fn sniff(output: &str) -> Option<Report> {
    if output.lines().any(|l| l.starts_with("test result: ")) {
        return Some(parse::cargo(output));
    }
    let go_events = output
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"Action\""))
        .count();
    if go_events > 0 {
        return Some(parse::go_json(output, ""));
    }
    let mix = regex::Regex::new(r"(?m)^\d+ tests?, \d+ failures?").expect("a valid pattern");
    if mix.is_match(output) {
        return Some(parse::mix(output));
    }
    None
}

/// Why a verify run's output is no test report kite can compare (recorded as "unreadable").
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("the runner wrote no report file")]
    NoReportFile,
    #[error("the output is no test report kite reads (libtest, go test -json, ExUnit); to have the test delta, make [merge] verify print one, or leave it unset to use the detected runner")]
    NotAReport,
    #[error("the report names no test")]
    NoTest,
    #[error(transparent)]
    Report(#[from] crate::TestrunError),
}

/// Reads a verify run that exited 0 in `root` (kite's merge worktree): by the runner's `format`
/// when kite detected the runner (`report` is the report file's text, for the formats that write
/// one), else by [`sniff`].
pub fn read_verify(
    format: Option<&Format>,
    output: &str,
    report: Option<&str>,
    root: &std::path::Path,
) -> Result<Report, Unreadable> {
    let r = match format {
        Some(Format::CargoText) => parse::cargo(output),
        Some(Format::GoJson { module }) => parse::go_json(output, module),
        Some(Format::MixText) => parse::mix(output),
        Some(Format::JestJson) => parse::jest_json(report.ok_or(Unreadable::NoReportFile)?, root)?,
        Some(Format::JunitFile) => parse::junit(report.ok_or(Unreadable::NoReportFile)?, &|rel| {
            crate::find_file(root, rel)
        })?,
        Some(Format::JunitDirs { dirs }) => {
            crate::junit_dirs(root, dirs, crate::Exit::Code(0), output)?
        }
        None => sniff(output).ok_or(Unreadable::NotAReport)?,
    };
    if r.passed == 0 && r.failed == 0 && r.passing.is_empty() && r.failures.is_empty() {
        return Err(Unreadable::NoTest);
    }
    Ok(r)
}

fn names(it: impl IntoIterator<Item = String>) -> Vec<String> {
    it.into_iter().take(TestDelta::NAMES).collect()
}

/// `after` (this landing's verify run) against `before` (the target's last one, from commit
/// `base`), or against nothing on the target's first verified landing.
pub fn delta(before: Option<(&str, &Report)>, after: &Report) -> TestDelta {
    let mut d = TestDelta {
        passed: after.passed,
        failed: after.failed,
        by_name: after.by_name,
        ..TestDelta::default()
    };
    let Some((base, before)) = before else {
        return d;
    };
    d.baseline = Some(base.to_string());
    if after.by_name && before.by_name {
        let failing = |r: &Report| -> BTreeSet<String> {
            r.failures.iter().map(|f| f.name.clone()).collect()
        };
        let (p0, f0): (BTreeSet<String>, BTreeSet<String>) =
            (before.passing.iter().cloned().collect(), failing(before));
        let (p1, f1): (BTreeSet<String>, BTreeSet<String>) =
            (after.passing.iter().cloned().collect(), failing(after));
        let all0: BTreeSet<&String> = p0.iter().chain(&f0).collect();
        let all1: BTreeSet<&String> = p1.iter().chain(&f1).collect();
        let added: Vec<String> = all1
            .iter()
            .filter(|n| !all0.contains(*n))
            .map(|n| n.to_string())
            .collect();
        let removed: Vec<String> = all0
            .iter()
            .filter(|n| !all1.contains(*n))
            .map(|n| n.to_string())
            .collect();
        let now_pass: Vec<String> = f0.intersection(&p1).cloned().collect();
        let broke: Vec<String> = p0.intersection(&f1).cloned().collect();
        (d.added, d.removed, d.now_pass, d.broke) = (
            added.len() as u64,
            removed.len() as u64,
            now_pass.len() as u64,
            broke.len() as u64,
        );
        (
            d.added_names,
            d.removed_names,
            d.now_pass_names,
            d.broke_names,
        ) = (names(added), names(removed), names(now_pass), names(broke));
    } else {
        d.by_name = false;
        let (t0, t1) = (before.passed + before.failed, after.passed + after.failed);
        d.added = t1.saturating_sub(t0);
        d.removed = t0.saturating_sub(t1);
        d.now_pass = before.failed.saturating_sub(after.failed);
        d.broke = after.failed.saturating_sub(before.failed);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cargo(lines: &[&str]) -> Report {
        let mut out = String::from(
            "     Running unittests src/lib.rs (target/debug/deps/calc-0123456789abcdef)\n",
        );
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        let failed = lines.iter().filter(|l| l.ends_with("FAILED")).count();
        let passed = lines.iter().filter(|l| l.ends_with(" ok")).count();
        out.push_str(&format!(
            "\ntest result: ok. {passed} passed; {failed} failed; 0 ignored\n"
        ));
        parse::cargo(&out)
    }

    #[test]
    fn by_name_it_counts_added_fixed_broken_and_removed_tests() {
        let before = cargo(&[
            "test a ... ok",
            "test b ... FAILED",
            "test c ... ok",
            "test gone ... ok",
        ]);
        let after = cargo(&[
            "test a ... ok",
            "test b ... ok",
            "test c ... FAILED",
            "test d ... ok",
            "test e ... ok",
        ]);
        let d = delta(Some(("abc", &before)), &after);
        assert!(d.by_name);
        assert_eq!((d.added, d.now_pass, d.broke, d.removed), (2, 1, 1, 1));
        assert_eq!(d.added_names, vec!["calc::d", "calc::e"]);
        assert_eq!(
            (
                d.now_pass_names[0].as_str(),
                d.broke_names[0].as_str(),
                d.removed_names[0].as_str()
            ),
            ("calc::b", "calc::c", "calc::gone")
        );
        assert_eq!(
            (d.passed, d.failed, d.baseline.as_deref()),
            (4, 1, Some("abc"))
        );
    }

    #[test]
    fn without_names_it_compares_counts_and_says_so_and_the_first_run_counts_nothing() {
        let before = parse::mix("5 tests, 2 failures\n");
        let after = parse::mix("8 tests, 1 failure\n");
        let d = delta(Some(("abc", &before)), &after);
        assert!(!d.by_name);
        assert_eq!((d.added, d.now_pass, d.broke, d.removed), (3, 1, 0, 0));
        assert!(d.added_names.is_empty());
        assert!(d.describe().contains("by counts"), "{}", d.describe());
        let first = delta(None, &after);
        assert_eq!((first.baseline.as_deref(), first.added), (None, 0));
        assert!(first.describe().contains("no earlier verify run"));
    }

    #[test]
    fn verify_output_is_read_by_its_runner_or_sniffed_and_otherwise_is_unreadable() {
        let libtest = "test x ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored\n";
        let r = read_verify(None, libtest, None, std::path::Path::new("/")).unwrap();
        assert!(r.by_name && r.passed == 1, "{r:?}");
        let go = "{\"Action\":\"pass\",\"Package\":\"m/p\",\"Test\":\"TestX\"}\n{\"Action\":\"pass\",\"Package\":\"m/p\"}\n";
        assert_eq!(
            read_verify(None, go, None, std::path::Path::new("/"))
                .unwrap()
                .passed,
            1
        );
        assert!(
            read_verify(None, "all good!\n", None, std::path::Path::new("/"))
                .unwrap_err()
                .to_string()
                .contains("no test report")
        );
        assert!(
            read_verify(Some(&Format::JestJson), "", None, std::path::Path::new("/"))
                .unwrap_err()
                .to_string()
                .contains("no report file")
        );
        assert!(read_verify(
            Some(&Format::CargoText),
            "nothing here",
            None,
            std::path::Path::new("/")
        )
        .unwrap_err()
        .to_string()
        .contains("names no test"));
    }
}
