//! The one reader of `git status`: `--porcelain=v1 -z`, so a rename is one entry (by its new
//! name, with the old one kept) and a file name with spaces, quotes or non-ASCII comes back as it
//! is, never C-quoted.

use std::path::Path;

use crate::{git, GitError};

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The two status letters (`" M"`, `"??"`, `"R "`).
    pub xy: String,
    /// The path now (a rename's new name).
    pub path: String,
    /// A rename's or copy's old name.
    pub from: Option<String>,
}

impl Change {
    pub fn untracked(&self) -> bool {
        self.xy == "??"
    }
}

/// Parses `git status --porcelain=v1 -z` output.
pub fn parse(z: &str) -> Vec<Change> {
    let mut out = Vec::new();
    let mut fields = z.split('\0');
    while let Some(f) = fields.next() {
        if f.len() < 4 {
            continue;
        }
        let (xy, path) = (&f[..2], &f[3..]);
        // A rename or copy is followed by its source, as a field of its own.
        let from = if xy.contains('R') || xy.contains('C') { fields.next().map(str::to_string) } else { None };
        out.push(Change { xy: xy.to_string(), path: path.to_string(), from });
    }
    out
}

/// The changes in a worktree, with or without untracked files (never ignored ones).
pub async fn status(dir: &Path, untracked: bool) -> Result<Vec<Change>, GitError> {
    let mode = if untracked { "--untracked-files=all" } else { "--untracked-files=no" };
    // Trimming stops at the last record's NUL, so a name ending in a space keeps it.
    let out = git(dir, &["status", "--porcelain=v1", "-z", mode]).await?;
    Ok(parse(&out))
}

/// Files with changes in a worktree (a rename by its new name), with or without untracked ones.
pub async fn changed_files(dir: &Path, untracked: bool) -> Result<Vec<String>, GitError> {
    Ok(status(dir, untracked).await?.into_iter().map(|c| c.path).collect())
}

/// Files with uncommitted changes in a worktree, untracked ones included.
pub async fn uncommitted(dir: &Path) -> Result<Vec<String>, GitError> {
    changed_files(dir, true).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn renames_are_one_entry_by_the_new_name_and_odd_names_are_not_quoted() {
        let z = " M src/a b.rs\0R  new.rs\0old.rs\0?? caf\u{e9}.txt\0";
        let v = parse(z);
        assert_eq!(v.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["src/a b.rs", "new.rs", "caf\u{e9}.txt"]);
        assert_eq!(v[1].from.as_deref(), Some("old.rs"));
        assert!(v[2].untracked());
        assert!(parse("").is_empty());
    }

    #[tokio::test]
    async fn a_worktrees_changes_with_and_without_untracked_files() {
        let repo = fixture::git_repo();
        let p = repo.path();
        fixture::write(p, "README.md", "changed\n");
        fixture::write(p, "dir/new file.txt", "x\n");
        fixture::git(p, &["mv", "README.md", "READ ME.md"]);
        let all = changed_files(p, true).await.unwrap();
        assert_eq!(all, ["READ ME.md", "dir/new file.txt"]);
        assert_eq!(changed_files(p, false).await.unwrap(), ["READ ME.md"]);
    }
}
