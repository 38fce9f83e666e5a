//! `kite.toml` in the home: defaults, then the file, then flags. One settings struct per area,
//! each with a `Default`, so a missing file or section means the documented defaults.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) daemon: DaemonSettings,
    pub(crate) store: StoreSettings,
    pub(crate) vault: VaultSettings,
    pub(crate) runner: toml::Table,
    pub(crate) sched: toml::Table,
    pub(crate) hooks: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DaemonSettings {
    pub(crate) heartbeat_timeout: u64,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings { heartbeat_timeout: 300 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StoreSettings {
    /// "normal" (survives kill -9) or "full" (survives power loss).
    pub(crate) synchronous: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings { synchronous: "normal".into() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VaultSettings {
    pub(crate) dir: Option<PathBuf>,
    pub(crate) model_dir: Option<PathBuf>,
}

impl Config {
    /// Reads `home/kite.toml`; a missing file is the defaults, a broken one an error naming it.
    pub(crate) fn load(home: &Path) -> Result<Config> {
        let path = home.join("kite.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid config {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}
