//! Counting a task's lines at a revision: `git blame -w -M -C --line-porcelain`, so a line that was
//! only re-indented, moved within its file or moved from another file the same commit touched
//! stays the task's. Each (revision, file) is blamed once and kept, so the tasks touching one file
//! share its blame, and a task's landing, its 1-, 7-, 14- and 30-day revisions and the head are a
//! handful of blames, not one per question.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::QualityError;

/// Lines of one file at one revision, by the commit blame gives them to.
pub type LinesByCommit = HashMap<String, u64>;

/// Blames, cached per (revision, file); with the other answers git gives that do not change for
/// a given set of commits (a landing's files, the renames between two revisions, the head as of a
/// time).
#[derive(Debug)]
pub struct Blamer {
    repo: PathBuf,
    cache: HashMap<(String, String), Arc<LinesByCommit>>,
    files: HashMap<String, Vec<String>>,
    renames: HashMap<(String, String), Arc<HashMap<String, String>>>,
    as_of: HashMap<(String, i64), Option<String>>,
    /// How many `git blame` runs it took (for the benchmark).
    pub runs: usize,
}

impl Blamer {
    pub fn new(repo: &Path) -> Blamer {
        Blamer { repo: repo.to_path_buf(), cache: HashMap::new(), files: HashMap::new(), renames: HashMap::new(), as_of: HashMap::new(), runs: 0 }
    }

    /// The files a task's commits changed (a merge commit against its first parent), sorted;
    /// kept per landing.
    pub async fn files_of(&mut self, landing: &str, commits: &[String]) -> Result<Vec<String>, QualityError> {
        if let Some(f) = self.files.get(landing) {
            return Ok(f.clone());
        }
        let mut files = BTreeSet::new();
        for c in commits {
            let out = kite_git::git(&self.repo, &["diff-tree", "-r", "--no-commit-id", "--name-only", "-z", "-m", "--first-parent", "--root", c]).await?;
            files.extend(out.split('\0').map(str::trim).filter(|f| !f.is_empty()).map(str::to_string));
        }
        let files: Vec<String> = files.into_iter().collect();
        self.files.insert(landing.to_string(), files.clone());
        Ok(files)
    }

    /// The first-parent commit of `head` as of `at` (Unix seconds), if there was one then.
    pub async fn head_as_of(&mut self, head: &str, at: i64) -> Result<Option<String>, QualityError> {
        let key = (head.to_string(), at);
        if let Some(hit) = self.as_of.get(&key) {
            return Ok(hit.clone());
        }
        let out = kite_git::git(&self.repo, &["rev-list", "-1", "--first-parent", &format!("--before={at}"), head]).await?;
        let rev = Some(out.trim().to_string()).filter(|s| !s.is_empty());
        self.as_of.insert(key, rev.clone());
        Ok(rev)
    }

    /// Where files at `from` are at `to` when a later commit renamed or moved them
    /// (`git diff -M`): old path → new path.
    async fn renames(&mut self, from: &str, to: &str) -> Result<Arc<HashMap<String, String>>, QualityError> {
        let key = (from.to_string(), to.to_string());
        if let Some(hit) = self.renames.get(&key) {
            return Ok(hit.clone());
        }
        let out = kite_git::git(&self.repo, &["diff", "-M", "--name-status", "-z", "--diff-filter=R", from, to]).await?;
        let mut map = HashMap::new();
        let mut fields = out.split('\0');
        while let (Some(status), Some(old), Some(new)) = (fields.next(), fields.next(), fields.next()) {
            if status.starts_with('R') {
                map.insert(old.to_string(), new.to_string());
            }
        }
        let map = Arc::new(map);
        self.renames.insert(key, map.clone());
        Ok(map)
    }

    /// How many lines of a task's `files` (as they were at its `landing`) blame gives to one of
    /// `commits` at `rev`, following files renamed since.
    pub async fn count_since(&mut self, landing: &str, rev: &str, files: &[String], commits: &HashSet<String>) -> Result<u64, QualityError> {
        if rev == landing {
            return self.count(rev, files, commits).await;
        }
        let moved = self.renames(landing, rev).await?;
        let at_rev: Vec<String> = files.iter().map(|f| moved.get(f).cloned().unwrap_or_else(|| f.clone())).collect();
        self.count(rev, &at_rev, commits).await
    }

    /// The lines of `file` at `rev` by commit; empty when the file is not there.
    pub async fn lines(&mut self, rev: &str, file: &str) -> Result<Arc<LinesByCommit>, QualityError> {
        let key = (rev.to_string(), file.to_string());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let exists = kite_git::git(&self.repo, &["cat-file", "-e", &format!("{rev}:{file}")]).await.is_ok();
        let counted = if exists {
            self.runs += 1;
            let out = kite_git::git(&self.repo, &["blame", "-w", "-M", "-C", "--line-porcelain", rev, "--", file]).await?;
            parse_line_porcelain(&out)
        } else {
            LinesByCommit::new()
        };
        let counted = Arc::new(counted);
        self.cache.insert(key, counted.clone());
        Ok(counted)
    }

    /// Drops the blames at `rev` (a head the target has moved on from).
    pub fn forget(&mut self, rev: &str) {
        self.cache.retain(|(r, _), _| r != rev);
    }

    /// How many lines of `files` at `rev` blame gives to one of `commits`.
    pub async fn count(&mut self, rev: &str, files: &[String], commits: &HashSet<String>) -> Result<u64, QualityError> {
        let mut n = 0;
        for f in files {
            let lines = self.lines(rev, f).await?;
            n += commits.iter().filter_map(|c| lines.get(c)).sum::<u64>();
        }
        Ok(n)
    }
}

/// Reads `--line-porcelain`: every line of the file has a header `<sha> <orig> <final>[ <n>]`.
fn parse_line_porcelain(out: &str) -> LinesByCommit {
    let mut by = LinesByCommit::new();
    for line in out.lines() {
        let Some((sha, rest)) = line.split_once(' ') else { continue };
        if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) && rest.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            *by.entry(sha.to_string()).or_default() += 1;
        }
    }
    by
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_counted_and_content_is_not() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let out = format!(
            "{a} 1 1 2\nauthor x\nsummary s\nfilename f\n\tline one\n{a} 2 2\nauthor x\nfilename f\n\t{b} 3 3 looks like a header\n{b} 1 3 1\nfilename f\n\tthree\n"
        );
        let by = parse_line_porcelain(&out);
        assert_eq!((by[&a], by[&b]), (2, 1));
    }
}
