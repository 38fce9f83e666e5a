//! Lock paths. Every path a client names is normalized, lexically, to a path relative to the
//! project root ("." is the root itself), so `./src/../src/a.rs`, `src/a.rs` and
//! `/repo/src/a.rs` are one lock. A path that leaves the root is refused. A path with glob
//! characters (`*`, `?`, `[`, `{`) is a pattern and covers every path it matches; a plain path
//! covers itself and everything under it (a lock on a directory covers its files).

use globset::{GlobBuilder, GlobMatcher};
use std::path::{Component, Path, PathBuf};

/// Why a path cannot be a lock path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("path '{0}' is outside the project root {1}")]
    OutsideRoot(String, String),
    #[error("path '{0}' is not valid UTF-8")]
    NotUtf8(String),
    #[error("bad glob pattern '{0}': {1}")]
    BadGlob(String, String),
    #[error("path '{0}' contains a NUL byte or a newline")]
    BadChar(String),
}

/// A normalized lock path: relative to the project root, `/`-separated, no `.` or `..`.
#[derive(Debug, Clone)]
pub struct LockPath {
    rel: String,
    glob: Option<GlobMatcher>,
}

impl PartialEq for LockPath {
    fn eq(&self, other: &Self) -> bool {
        self.rel == other.rel
    }
}
impl Eq for LockPath {}

impl LockPath {
    /// Parses an already-normalized relative path (as stored in the database).
    pub fn from_normalized(rel: &str) -> Result<LockPath, PathError> {
        let glob = if is_glob(rel) {
            Some(
                GlobBuilder::new(rel)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| PathError::BadGlob(rel.to_string(), e.kind().to_string()))?
                    .compile_matcher(),
            )
        } else {
            None
        };
        Ok(LockPath { rel: rel.to_string(), glob })
    }

    pub fn as_str(&self) -> &str {
        &self.rel
    }

    pub fn is_glob(&self) -> bool {
        self.glob.is_some()
    }

    /// The leading components that hold no glob characters: the directory a pattern lives in.
    fn literal_prefix(&self) -> &str {
        if self.glob.is_none() {
            return &self.rel;
        }
        let mut end = 0;
        for (i, part) in self.rel.split('/').enumerate() {
            if is_glob(part) {
                break;
            }
            end = if i == 0 { part.len() } else { end + 1 + part.len() };
        }
        if end == 0 {
            "."
        } else {
            &self.rel[..end]
        }
    }

    /// Whether a lock on `self` and a lock on `other` cover at least one common path.
    pub fn overlaps(&self, other: &LockPath) -> bool {
        match (&self.glob, &other.glob) {
            (None, None) => covers_plain(&self.rel, &other.rel) || covers_plain(&other.rel, &self.rel),
            (Some(g), None) => glob_touches(g, self.literal_prefix(), &other.rel),
            (None, Some(g)) => glob_touches(g, other.literal_prefix(), &self.rel),
            // Two patterns: decided by the directories they live in, conservatively. Exact
            // overlap of two globs is a language-intersection problem; a false conflict only
            // makes a session wait, a missed one would let two writers in.
            (Some(_), Some(_)) => {
                let (a, b) = (self.literal_prefix(), other.literal_prefix());
                covers_plain(a, b) || covers_plain(b, a)
            }
        }
    }
}

/// A pattern touches a plain path if it matches the path or one of its ancestors, or if the path
/// is a directory above everything the pattern could match.
fn glob_touches(g: &GlobMatcher, prefix: &str, path: &str) -> bool {
    if covers_plain(path, prefix) {
        return true;
    }
    let mut cur = path;
    loop {
        if g.is_match(cur) {
            return true;
        }
        match cur.rfind('/') {
            Some(i) => cur = &cur[..i],
            None => return false,
        }
    }
}

/// Whether plain path `a` is `b` or a directory above it.
fn covers_plain(a: &str, b: &str) -> bool {
    a == "." || a == b || (b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'/')
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// Normalizes `input` (absolute, or relative to `cwd`) to a lock path inside `root`. Purely
/// lexical: `..` is resolved against the path written, not the file system, so a path that does
/// not exist yet can be locked.
pub fn normalize(root: &Path, cwd: &Path, input: &str) -> Result<LockPath, PathError> {
    if input.trim().is_empty() {
        return Err(PathError::Empty);
    }
    if input.contains(['\0', '\n', '\r']) {
        return Err(PathError::BadChar(input.escape_debug().to_string()));
    }
    // A glob is matched as written: a `..` inside or after its first pattern component would
    // be resolved lexically out of the pattern (`src/{a,../../x}` became the literal `src/x}`).
    let mut in_glob = false;
    for part in input.split('/') {
        in_glob |= is_glob(part);
        if in_glob && part == ".." {
            return Err(PathError::BadGlob(input.to_string(), "a pattern may not contain `..`; write the directory before the pattern".into()));
        }
    }
    let root = lexical(root);
    let joined = if Path::new(input).is_absolute() {
        PathBuf::from(input)
    } else {
        cwd.join(input)
    };
    let abs = lexical(&joined);
    let rel = abs
        .strip_prefix(&root)
        .map_err(|_| PathError::OutsideRoot(input.to_string(), root.display().to_string()))?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| PathError::NotUtf8(input.to_string()))?),
            _ => return Err(PathError::OutsideRoot(input.to_string(), root.display().to_string())),
        }
    }
    let rel = if parts.is_empty() { ".".to_string() } else { parts.join("/") };
    LockPath::from_normalized(&rel)
}

/// What a client sends for a path the person or agent wrote: relative to the top of its own
/// work tree (`worktree`), so one file is one lock whichever work tree of the repository it is
/// named from. `.` for the work tree itself; a path outside it is refused like one outside the
/// root.
pub fn repo_relative(worktree: &Path, cwd: &Path, input: &str) -> Result<String, PathError> {
    normalize(worktree, cwd, input).map(|p| p.as_str().to_string())
}

/// Resolves `.` and `..` without touching the file system. `..` above `/` stays at `/`.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(input: &str) -> Result<String, PathError> {
        normalize(Path::new("/repo"), Path::new("/repo/src"), input).map(|p| p.as_str().to_string())
    }

    fn lp(s: &str) -> LockPath {
        LockPath::from_normalized(s).unwrap()
    }

    #[test]
    fn repo_relative_paths_are_the_same_from_every_work_tree() {
        let wt = Path::new("/repo/.kite/worktrees/task-3");
        assert_eq!(repo_relative(wt, &wt.join("src"), "a.rs").unwrap(), "src/a.rs");
        assert_eq!(repo_relative(wt, wt, "/repo/.kite/worktrees/task-3/src/a.rs").unwrap(), "src/a.rs");
        assert_eq!(repo_relative(Path::new("/wt"), Path::new("/wt"), "src/*.rs").unwrap(), "src/*.rs");
        assert!(repo_relative(wt, wt, "../../../x").is_err());
    }

    #[test]
    fn normalizes_relative_absolute_and_dotted_paths_to_one_form() {
        for (input, want) in [
            ("a.rs", "src/a.rs"),
            ("./a.rs", "src/a.rs"),
            ("../src/a.rs", "src/a.rs"),
            ("/repo/src/a.rs", "src/a.rs"),
            ("/repo/src/./x/../a.rs", "src/a.rs"),
            ("..", "."),
            ("/repo", "."),
            ("lib/", "src/lib"),
        ] {
            assert_eq!(norm(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn refuses_paths_outside_the_root() {
        for input in ["../../etc/passwd", "/etc/passwd", "/repository/x", "/repo/../repo2/a"] {
            assert!(matches!(norm(input), Err(PathError::OutsideRoot(..))), "{input}");
        }
        assert_eq!(norm("  "), Err(PathError::Empty));
        assert!(matches!(norm("a\nb"), Err(PathError::BadChar(_))));
    }

    #[test]
    fn directories_cover_their_files_but_not_siblings_with_a_common_prefix() {
        assert!(lp("src").overlaps(&lp("src/a.rs")));
        assert!(lp("src/a.rs").overlaps(&lp("src")));
        assert!(!lp("src").overlaps(&lp("srcx/a.rs")));
        assert!(lp(".").overlaps(&lp("anything/at/all")));
        assert!(!lp("src/a.rs").overlaps(&lp("src/b.rs")));
    }

    #[test]
    fn globs_cover_what_they_match_and_what_lies_below_a_match() {
        assert!(lp("src/*.rs").overlaps(&lp("src/a.rs")));
        assert!(!lp("src/*.rs").overlaps(&lp("src/a.txt")));
        assert!(!lp("src/*.rs").overlaps(&lp("src/sub/a.rs")), "* does not cross /");
        assert!(lp("src/**/*.rs").overlaps(&lp("src/sub/a.rs")));
        assert!(lp("src/*").overlaps(&lp("src/sub/a.rs")), "a matched directory covers its files");
        assert!(lp("src").overlaps(&lp("src/**/*.rs")), "a directory covers patterns under it");
        assert!(!lp("docs").overlaps(&lp("src/**/*.rs")));
        assert!(lp("src/*.rs").overlaps(&lp("src/{a,b}.rs")));
        assert!(!lp("src/*.rs").overlaps(&lp("docs/*.md")));
    }

    #[test]
    fn bad_globs_are_refused() {
        assert!(matches!(LockPath::from_normalized("src/[a"), Err(PathError::BadGlob(..))));
    }

    /// Regression (torture run, finding 7): `..` is not resolved out of a pattern.
    #[test]
    fn a_parent_step_inside_or_after_a_pattern_is_refused() {
        for input in ["{a,../../x}", "*/../b", "src/[ab]/../../c"] {
            assert!(matches!(norm(input), Err(PathError::BadGlob(..))), "{input}: {:?}", norm(input));
        }
        assert_eq!(norm("../src/*.rs").unwrap(), "src/*.rs", "a parent step before the pattern is fine");
    }
}
