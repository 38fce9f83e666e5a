//! Tasks as the scheduler sees them: kite-core's task record, plus what the scheduler asks to
//! create and the file-overlap rule it plans with.
//!
//! kite-sched does not depend on the coordinator's wire types (kite-proto): whoever implements
//! [`crate::Queue`] converts requests for it. That keeps the planner pure and testable.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A task as the queue reports it, and its lifecycle state: the coordinator's own types, one
/// definition for both sides. `attempts` counts starts, so for a pending task it is the number of
/// earlier runs that did not finish it: what the runner counts as failures so far.
pub use kite_core::{Task, TaskStatus};

/// A task to create.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewTask {
    pub title: String,
    pub body: String,
    pub priority: i64,
    pub depends_on: Vec<i64>,
    pub files: Vec<String>,
    pub dedup_key: Option<String>,
    pub stale_after_secs: Option<u64>,
    pub workstream: Option<String>,
    pub template: Option<String>,
}

/// Whether two lists of declared files overlap: equal paths, or one is a directory prefix of the
/// other (`src/` and `src/a.rs`). Paths are compared as written, after trimming `./` and `/`.
pub fn files_overlap(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| b.iter().any(|y| path_overlaps(x, y)))
}

/// The overlap rule for one pair of paths.
pub fn path_overlaps(a: &str, b: &str) -> bool {
    let a = normalize(a);
    let b = normalize(b);
    if a.is_empty() || b.is_empty() {
        return false;
    }
    a == b || is_under(a, b) || is_under(b, a)
}

/// A set of declared files that answers "does this path overlap any of them" in logarithmic time
/// (the planner asks it for every pending task against every active task's files).
#[derive(Debug, Clone, Default)]
pub struct FileSet {
    set: BTreeSet<String>,
}

impl FileSet {
    pub fn new<'a>(files: impl IntoIterator<Item = &'a str>) -> Self {
        FileSet { set: files.into_iter().map(normalize).filter(|f| !f.is_empty()).map(str::to_string).collect() }
    }

    /// Same rule as [`path_overlaps`] against every member.
    pub fn overlaps(&self, path: &str) -> bool {
        let f = normalize(path);
        if f.is_empty() || self.set.is_empty() {
            return false;
        }
        // f itself or a directory above it is in the set.
        if self.set.contains(f) || f.match_indices('/').any(|(i, _)| self.set.contains(&f[..i])) {
            return true;
        }
        // Something under f is in the set.
        let dir = format!("{f}/");
        self.set.range(dir.clone()..).next().is_some_and(|e| e.starts_with(&dir))
    }
}

fn normalize(p: &str) -> &str {
    let p = p.trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    p.trim_end_matches('/')
}

fn is_under(child: &str, dir: &str) -> bool {
    child.len() > dir.len() && child.starts_with(dir) && child.as_bytes()[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_rules() {
        assert!(path_overlaps("src/a.rs", "src/a.rs"));
        assert!(path_overlaps("./src/a.rs", "src/a.rs"));
        assert!(path_overlaps("src", "src/a.rs"));
        assert!(path_overlaps("src/", "src/a.rs"));
        assert!(!path_overlaps("src/a.rs", "src/ab.rs"));
        assert!(!path_overlaps("src/a", "src/ab/c.rs"));
        assert!(!path_overlaps("", "src"));
        assert!(files_overlap(&["x".into(), "src/lib.rs".into()], &["src".into()]));
        assert!(!files_overlap(&[], &["src".into()]));
    }

    #[test]
    fn file_set_agrees_with_pairwise_rule() {
        let members = ["src/a.rs", "docs/", "./lib/x/y.rs", "Cargo.toml"];
        let set = FileSet::new(members);
        for probe in ["src/a.rs", "src", "src/ab.rs", "docs/z.md", "lib", "lib/x", "lib/x/y.rs/", "lib/xy", "Cargo", "", "other"] {
            let pairwise = members.iter().any(|m| path_overlaps(probe, m));
            assert_eq!(set.overlaps(probe), pairwise, "{probe}");
        }
    }

    #[test]
    fn status_serde() {
        assert_eq!(serde_json::to_string(&TaskStatus::Pruned).unwrap(), "\"pruned\"");
        let s: TaskStatus = serde_json::from_str("\"active\"").unwrap();
        assert_eq!(s, TaskStatus::Active);
    }
}
