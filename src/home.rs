//! Where state lives: the kite home (socket, database, config, logs), the project root and the
//! vault, found from flags, then `KITE_*` environment, then the git repository around the
//! current directory — the order CLI.md promises.
//!
//! One repository has one kite, whichever of its work trees a command runs in: a linked work
//! tree (kite's own `.kite/worktrees/task-N`, Claude Code's `claude -w NAME` under
//! `.claude/worktrees/`, a person's `git worktree add ../wt`) resolves to the main checkout, so
//! its hooks, `kite mcp` and CLI reach the one daemon, queue, lock table and vault. The current
//! work tree's own top is kept beside it (`worktree`): lock paths are relative to it.
//!
//! The main checkout is found from the files git keeps (`.git` names the linked work tree's git
//! directory, whose `commondir` names the repository's), not by running git: hooks run after
//! every prompt and must not pay for a process.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The resolved places one command works with.
#[derive(Debug, Clone)]
pub(crate) struct Places {
    pub(crate) home: PathBuf,
    /// The main checkout: the project root the daemon and its lock table work in.
    pub(crate) root: PathBuf,
    /// The top of the work tree this command runs in (the root itself outside a linked one).
    pub(crate) worktree: PathBuf,
    pub(crate) vault: PathBuf,
}

impl Places {
    /// The home's files, each named once (`kite_coord::Home`).
    pub(crate) fn files(&self) -> kite_coord::Home {
        kite_coord::Home::new(&self.home)
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.files().socket()
    }

    /// The vault's derived index.
    pub(crate) fn index(&self) -> PathBuf {
        self.files().vault_index()
    }

    /// The config file.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.files().config()
    }

    /// A path the way the daemon's lock table and task files take it: relative to the top of
    /// this work tree (so `src/a.rs` is one lock from every work tree of the repository).
    pub(crate) fn repo_path(&self, cwd: &Path, input: &str) -> Result<String> {
        kite_core::paths::repo_relative(&self.worktree, cwd, input).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// The top of the git work tree containing `dir`, if any (a linked work tree's own top).
pub(crate) fn git_top(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

/// The main checkout of the repository whose work tree `dir` is in: for a linked work tree, the
/// one its git directory's `commondir` leads to; otherwise the work tree's own top.
pub(crate) fn git_root(dir: &Path) -> Option<PathBuf> {
    let top = git_top(dir)?;
    Some(main_checkout(&top).unwrap_or(top))
}

/// `top/.git` is a file (`gitdir: ...`) in a linked work tree; the git directory it names holds
/// `commondir`, the repository's own git directory, whose parent is the main checkout. A
/// submodule's `.git` file names a git directory without `commondir`: it is a repository of its
/// own. A bare repository's linked work trees have no main checkout: each is its own root.
fn main_checkout(top: &Path) -> Option<PathBuf> {
    let dotgit = top.join(".git");
    if !dotgit.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&dotgit).ok()?;
    let gitdir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let gitdir = absolute(top, Path::new(gitdir));
    let common = std::fs::read_to_string(gitdir.join("commondir")).ok()?;
    let common = absolute(&gitdir, Path::new(common.trim()));
    let common = common.canonicalize().unwrap_or(common);
    if common.file_name()? != ".git" {
        return None;
    }
    let main = common.parent()?.to_path_buf();
    main.join(".git").is_dir().then_some(main)
}

pub(crate) fn resolve(home: Option<PathBuf>, root: Option<PathBuf>, vault: Option<PathBuf>, config_vault: Option<PathBuf>) -> Result<Places> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let top = git_top(&cwd);
    let root = match root {
        Some(r) => absolute(&cwd, &r),
        None => top.as_deref().and_then(main_checkout).or_else(|| top.clone()).unwrap_or_else(|| cwd.clone()),
    };
    let root = root.canonicalize().unwrap_or(root);
    // The work tree lock paths are relative to: this one when it belongs to the root's
    // repository, else (a `--root` elsewhere) the root itself.
    let worktree = match top {
        Some(t) if t == root || main_checkout(&t).as_deref() == Some(root.as_path()) => t,
        _ => root.clone(),
    };
    let home = home.map(|h| absolute(&cwd, &h)).unwrap_or_else(|| root.join(".kite"));
    let vault = vault
        .or(config_vault)
        .map(|v| absolute(&root, &v))
        .unwrap_or_else(|| home.parent().unwrap_or(&root).join("vault"));
    Ok(Places { home, root, worktree, vault })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git").arg("-C").arg(dir).args(args).env("GIT_CONFIG_NOSYSTEM", "1").output().unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    }

    #[test]
    fn linked_work_trees_inside_and_outside_lead_to_the_main_checkout() {
        let t = tempfile::tempdir().unwrap();
        let main = t.path().join("repo");
        std::fs::create_dir_all(main.join("src")).unwrap();
        git(&main, &["init", "-q"]);
        git(&main, &["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"]);
        git(&main, &["worktree", "add", "-q", ".kite/worktrees/task-3"]);
        git(&main, &["worktree", "add", "-q", "../wt"]);
        let main = main.canonicalize().unwrap();
        assert_eq!(git_root(&main.join("src")), Some(main.clone()));
        let inner = main.join(".kite/worktrees/task-3");
        assert_eq!(git_top(&inner), Some(inner.clone()));
        assert_eq!(git_root(&inner), Some(main.clone()));
        let outer = t.path().canonicalize().unwrap().join("wt");
        assert_eq!(git_root(&outer), Some(main.clone()));
    }

    #[test]
    fn a_submodule_like_git_file_without_commondir_is_its_own_root() {
        let t = tempfile::tempdir().unwrap();
        let sub = t.path().join("sub");
        std::fs::create_dir_all(t.path().join("modules/sub")).unwrap();
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(".git"), "gitdir: ../modules/sub\n").unwrap();
        assert_eq!(git_root(&sub), Some(sub.clone()));
    }
}
