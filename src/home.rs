//! Where state lives: the kite home (socket, database, config, logs), the project root and the
//! vault, found from flags, then `KITE_*` environment, then the git repository around the
//! current directory — the order CLI.md promises.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The resolved places one command works with.
#[derive(Debug, Clone)]
pub(crate) struct Places {
    pub(crate) home: PathBuf,
    pub(crate) root: PathBuf,
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
}

/// The top of the git work tree containing `dir`, if any.
pub(crate) fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

pub(crate) fn resolve(home: Option<PathBuf>, root: Option<PathBuf>, vault: Option<PathBuf>, config_vault: Option<PathBuf>) -> Result<Places> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let root = match root {
        Some(r) => absolute(&cwd, &r),
        None => git_root(&cwd).unwrap_or_else(|| cwd.clone()),
    };
    let root = root.canonicalize().unwrap_or(root);
    let home = home.map(|h| absolute(&cwd, &h)).unwrap_or_else(|| root.join(".kite"));
    let vault = vault
        .or(config_vault)
        .map(|v| absolute(&root, &v))
        .unwrap_or_else(|| home.parent().unwrap_or(&root).join("vault"));
    Ok(Places { home, root, vault })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
