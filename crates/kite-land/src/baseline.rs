//! What a landing did to the tests needs something to compare its verify run with: the target's
//! last verify run, kept from the previous landing in `<home>/merge/verify-last-<target>.json`.
//! Kept per target (two targets' tests differ) and per verify command (a run of another command
//! names other tests, which would read as tests added and removed by the hundred: it is no
//! baseline). A baseline from a commit other than the candidate's base (a person's commits, an
//! unverified or unreadable landing in between) still compares, but the delta says how many
//! commits it spans, and `kite report` leaves it out of its sums: their changes are in it too.

use std::path::{Path, PathBuf};

use kite_core::TestDelta;
use kite_git::git;
use serde::{Deserialize, Serialize};

/// A target's last verify run.
#[derive(Serialize, Deserialize)]
pub(crate) struct Baseline {
    /// The commit that landed with it.
    pub(crate) commit: String,
    /// The verify command that ran.
    #[serde(default)]
    pub(crate) command: String,
    pub(crate) report: kite_testrun::Report,
}

/// The file of `target`'s baseline under `dir`: the name made safe, with a short hash of the raw
/// name so that `feat/x` and `feat_x` never share one.
pub(crate) fn file(dir: &Path, target: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let safe: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    target.hash(&mut h);
    dir.join(format!("verify-last-{safe}-{:08x}.json", h.finish() as u32))
}

/// What the verify run that just passed (`command`, its `output`, the report file's text) did to
/// the tests of `target`, whose candidate was built on `head`; with its run, to keep as the
/// target's once the candidate lands (none when the output could not be read).
pub(crate) async fn delta(
    repo: &Path,
    dir: &Path,
    target: &str,
    head: &str,
    command: &str,
    read: Result<kite_testrun::Report, kite_testrun::delta::Unreadable>,
) -> (TestDelta, Option<Baseline>) {
    let report = match read {
        Ok(r) => r,
        Err(why) => return (TestDelta::unreadable(why.to_string()), None),
    };
    let before: Option<Baseline> = tokio::fs::read(file(dir, target))
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Baseline>(&b).ok())
        .filter(|b| b.command == command);
    let mut d = kite_testrun::delta::delta(
        before.as_ref().map(|b| (b.commit.as_str(), &b.report)),
        &report,
    );
    if let Some(b) = before.as_ref().filter(|b| b.commit != head) {
        // Unknown (the commit is gone): the most it could span.
        d.behind = git(
            repo,
            &["rev-list", "--count", &format!("{}..{head}", b.commit)],
        )
        .await
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(u64::MAX);
    }
    (
        d,
        Some(Baseline {
            commit: String::new(),
            command: command.to_string(),
            report,
        }),
    )
}

/// Keeps `run` as `target`'s last verify run, from the commit that landed. Written aside, then
/// renamed: a crash never leaves half a baseline.
pub(crate) async fn keep(dir: &Path, target: &str, commit: &str, run: Option<Baseline>) {
    let Some(mut b) = run else { return };
    b.commit = commit.to_string();
    let path = file(dir, target);
    let written = serde_json::to_vec(&b)
        .map_err(std::io::Error::other)
        .and_then(|bytes| kite_core::files::write_atomic(&path, &bytes));
    if let Err(e) = written {
        tracing::warn!(
            "landing: the verify run is not kept for the next landing's test delta ({}): {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_with_the_same_safe_name_keep_apart() {
        let d = Path::new("/h");
        assert_ne!(file(d, "feat/x"), file(d, "feat_x"));
        assert_eq!(file(d, "main"), file(d, "main"));
        assert!(file(d, "main")
            .to_string_lossy()
            .contains("verify-last-main-"));
    }
}
