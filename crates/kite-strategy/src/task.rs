//! Tasks as the scheduler sees them: kite-core's task record, plus what the scheduler asks to
//! create and the file-overlap rule it plans with.
//!
//! kite-sched does not depend on the coordinator's wire types (kite-proto): whoever implements
//! [`crate::Queue`] converts requests for it. That keeps the planner pure and testable.

use std::collections::BTreeSet;

use kite_core::LockPath;

/// A task as the queue reports it, and its lifecycle state: the coordinator's own types, one
/// definition for both sides. `attempts` counts starts, so for a pending task it is the number of
/// earlier runs that did not finish it: what the runner counts as failures so far.
pub use kite_core::{Task, TaskStatus};

/// A task to create: kite-core's one new-task type (also `task.create`'s arguments).
pub use kite_core::NewTask;

/// Whether two lists of declared files overlap, by the rule locks use (kite-core's
/// [`LockPath::overlaps`]): equal paths, a directory and what is under it (`src/` and
/// `src/a.rs`), `.` and everything, a pattern and what it matches (`src/*.rs` and `src/a.rs`).
/// One rule, so the planner never calls two tasks independent that would wait on each other's
/// locks.
pub fn files_overlap(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| b.iter().any(|y| path_overlaps(x, y)))
}

/// The overlap rule for one pair of paths.
pub fn path_overlaps(a: &str, b: &str) -> bool {
    match (lock_path(a), lock_path(b)) {
        (Some(a), Some(b)) => a.overlaps(&b),
        _ => false,
    }
}

/// A declared file as a lock path. Files reach the planner normalized by the coordinator; `./`
/// and a trailing `/` are trimmed for paths written by hand (templates, tests).
fn lock_path(p: &str) -> Option<LockPath> {
    let p = p.trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        return None;
    }
    LockPath::from_normalized(p).ok()
}

/// A set of declared files that answers "does this path overlap any of them" in logarithmic time
/// for plain paths (the planner asks it for every pending task against every active task's
/// files); patterns and `.` are few and checked one by one, by the same rule as
/// [`path_overlaps`].
#[derive(Debug, Clone, Default)]
pub struct FileSet {
    plain: BTreeSet<String>,
    special: Vec<LockPath>,
}

impl FileSet {
    pub fn new<'a>(files: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = FileSet::default();
        for p in files.into_iter().filter_map(lock_path) {
            if p.is_glob() || p.as_str() == "." {
                set.special.push(p);
            } else {
                set.plain.insert(p.as_str().to_string());
            }
        }
        set
    }

    pub fn overlaps(&self, path: &str) -> bool {
        let Some(probe) = lock_path(path) else { return false };
        if self.special.iter().any(|s| s.overlaps(&probe)) {
            return true;
        }
        if probe.is_glob() || probe.as_str() == "." {
            return self.plain.iter().any(|m| LockPath::from_normalized(m).is_ok_and(|m| m.overlaps(&probe)));
        }
        let f = probe.as_str();
        // f itself or a directory above it is in the set.
        if self.plain.contains(f) || f.match_indices('/').any(|(i, _)| self.plain.contains(&f[..i])) {
            return true;
        }
        // Something under f is in the set.
        let dir = format!("{f}/");
        self.plain.range(dir.clone()..).next().is_some_and(|e| e.starts_with(&dir))
    }
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
        // The lock rule: patterns, and the root.
        assert!(path_overlaps("src/*.rs", "src/a.rs"));
        assert!(!path_overlaps("src/*.rs", "src/a.txt"));
        assert!(path_overlaps(".", "docs/x.md"));
        assert!(path_overlaps("**/*.md", "docs/x.md"));
    }

    #[test]
    fn file_set_agrees_with_pairwise_rule() {
        let members = ["src/a.rs", "docs/", "./lib/x/y.rs", "Cargo.toml", "tests/*.rs"];
        let set = FileSet::new(members);
        for probe in ["src/a.rs", "src", "src/ab.rs", "docs/z.md", "lib", "lib/x", "lib/x/y.rs/", "lib/xy", "Cargo", "", "other", "tests/a.rs", "tests/a.txt", "src/*.rs", "**/*.md", "."] {
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
