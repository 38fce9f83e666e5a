//! What a session is working on, as queries for the injection policy: the branch, the changed
//! files and the last commits (the `work` query), and a task's title, body and files (the `task`
//! query). Read from git all at once — three processes in parallel, started before the daemon is
//! asked, so their time overlaps with the rest of a session start.

use std::path::Path;

/// Words of a path, for a query: `crates/kite-memory/src/inject.rs` gives
/// `crates kite memory src inject rs`.
pub fn path_words(p: &str) -> String {
    p.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The git facts a session start reads, started at once.
pub struct GitFacts {
    runs: Vec<kite_git::Spawned>,
}

impl GitFacts {
    pub fn start(root: &Path) -> GitFacts {
        let asks: [&[&str]; 3] = [
            &["rev-parse", "--abbrev-ref", "HEAD"],
            &["status", "--porcelain=v1", "-z", "--untracked-files=normal"],
            &["log", "-5", "--name-only", "--format=%s"],
        ];
        GitFacts { runs: asks.iter().map(|a| kite_git::spawn(root, a)).collect() }
    }

    /// (branch, the query for the recent work).
    pub fn finish(self) -> (Option<String>, Option<String>) {
        let mut out = self.runs.into_iter().map(|r| r.finish().ok());
        let branch = out.next().flatten().map(|b| b.trim().to_string());
        let changed: Vec<String> = kite_git::status::parse(&out.next().flatten().unwrap_or_default()).into_iter().map(|c| c.path).collect();
        let recent = out.next().flatten().unwrap_or_default();
        let work = work_query(branch.as_deref().unwrap_or(""), &changed, &recent);
        (branch, work)
    }
}

/// What is being worked on: the branch, the changed files and the last commits (`git log
/// --name-only --format=%s`: their subjects and the files they touched).
pub fn work_query(branch: &str, changed: &[String], recent: &str) -> Option<String> {
    let mut parts: Vec<String> = vec![];
    if !branch.is_empty() && !matches!(branch, "HEAD" | "main" | "master") {
        parts.push(path_words(branch));
    }
    let mut files: Vec<&str> = changed.iter().map(String::as_str).collect();
    let mut subjects = vec![];
    for line in recent.lines().filter(|l| !l.trim().is_empty()) {
        if line.contains('/') || (line.contains('.') && !line.contains(' ')) {
            files.push(line);
        } else {
            subjects.push(line.trim());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(*f));
    parts.extend(files.iter().take(20).map(|f| path_words(f)));
    parts.extend(subjects.iter().map(|s| s.to_string()));
    let q = parts.join(". ");
    (!q.trim().is_empty()).then_some(q)
}

/// The query for a task: its title, body (one line, cut) and its files' words.
pub fn task_query(title: &str, body: &str, files: &[String]) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let body = if flat.chars().count() <= 1000 { flat } else { format!("{}…", flat.chars().take(1000).collect::<String>()) };
    let files: Vec<String> = files.iter().map(|f| path_words(f)).collect();
    format!("{title}. {body} {}", files.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_query_names_the_branch_changed_files_and_commits() {
        let changed = vec!["lib/review_live.ex".to_string(), "test/review_test.exs".to_string()];
        let q = work_query("spotter-gqc", &changed, "Add review page\n\nlib/review_live.ex\n\nFix flash\nlib/layout.ex").unwrap();
        assert_eq!(q, "spotter gqc. lib review live ex. test review test exs. lib layout ex. Add review page. Fix flash");
        assert_eq!(work_query("main", &[], ""), None, "a clean main says nothing");
    }

    #[test]
    fn a_task_query_is_its_words() {
        assert_eq!(task_query("Fix login", "the form\n  breaks", &["src/auth.rs".into()]), "Fix login. the form breaks src auth rs");
    }
}
