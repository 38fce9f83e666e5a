//! Where kite's installed data lives: the embedding model and the ONNX runtime. A user installs
//! them once (`make install`) and uses kite in any repository, so the binary has to find them with
//! no variable set. The order is the one docs/CLI.md promises: `KITE_MODEL_DIR` / `KITE_ORT_DYLIB`,
//! `[memory]` in kite.toml, `$XDG_DATA_HOME/kite` (~/.local/share/kite), `../share/kite` beside the
//! executable, then a development checkout's `models/` (the one `make setup` fills).

use crate::config::MemorySettings;
use kite_memory::embed::{locate, EmbedConfig, Located, ModelPlace, MODEL_SUBDIR, ORT_FILE};
use std::path::{Path, PathBuf};

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `$XDG_DATA_HOME/kite`, or `~/.local/share/kite` when XDG_DATA_HOME is unset.
pub(crate) fn user_data_dir() -> Option<PathBuf> {
    env_path("XDG_DATA_HOME").or_else(|| env_path("HOME").map(|h| h.join(".local/share"))).map(|d| d.join("kite"))
}

/// Every place to look, in order. `KITE_ORT_DYLIB` alone overrides only the runtime of whatever
/// place is found.
pub(crate) fn places(memory: &MemorySettings, config_file: &Path) -> Vec<ModelPlace> {
    let ort_env = env_path("KITE_ORT_DYLIB");
    let mut out = Vec::new();
    let mut push = |origin: String, mut config: EmbedConfig| {
        if let Some(o) = &ort_env {
            config.ort_dylib = o.clone();
        }
        if !out.iter().any(|p: &ModelPlace| p.config == config) {
            out.push(ModelPlace { origin, config });
        }
    };
    if let Some(dir) = env_path("KITE_MODEL_DIR") {
        let ort = dir.join("..").join(ORT_FILE);
        push("KITE_MODEL_DIR".into(), EmbedConfig { model_dir: dir, ort_dylib: ort });
    }
    if let Some(dir) = &memory.model_dir {
        let base = config_file.parent().unwrap_or(Path::new("."));
        let dir = base.join(dir);
        let ort = memory.ort_dylib.as_ref().map(|o| base.join(o)).unwrap_or_else(|| dir.join("..").join(ORT_FILE));
        push(format!("[memory] in {}", config_file.display()), EmbedConfig { model_dir: dir, ort_dylib: ort });
    }
    if let Some(d) = user_data_dir() {
        push(d.display().to_string(), EmbedConfig::in_data_dir(&d));
    }
    let exe = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok());
    if let Some(bin) = exe.as_deref().and_then(Path::parent) {
        let share = bin.join("../share/kite");
        let share = share.canonicalize().unwrap_or(share);
        push(share.display().to_string(), EmbedConfig::in_data_dir(&share));
        // A development checkout: the binary is its target/{release,debug}/kite. Found from the
        // executable's place, not from where it was built, so an installed copy never falls back
        // to a checkout that may be gone.
        if let Some(checkout) = bin.ancestors().take(3).find(|d| d.join("Cargo.toml").is_file() && d.join("models").join(MODEL_SUBDIR).exists()) {
            let models = checkout.join("models");
            push(format!("checkout {}", checkout.display()), EmbedConfig::in_data_dir(&models));
        }
    }
    out
}

/// The model and runtime this process should use.
pub(crate) fn model(memory: &MemorySettings, config_file: &Path) -> Located {
    locate(places(memory, config_file))
}

/// This kite's executable, for the hooks and MCP server of the agents it starts. After `make
/// install` replaced the binary under a running daemon, Linux names the old one
/// `/path/kite (deleted)`: the path without the suffix is the new kite, which is what the agents
/// must run. A path that does not exist is an error, never wiring that names nothing.
pub(crate) fn kite_exe() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("cannot find the kite executable")?;
    let text = exe.to_string_lossy();
    let exe = match text.strip_suffix(" (deleted)") {
        Some(p) => PathBuf::from(p),
        None => exe,
    };
    let exe = exe.canonicalize().with_context(|| format!("the kite executable {} is gone; restart the daemon", exe.display()))?;
    Ok(exe)
}
