//! `kite config set KEY VALUE`: one setting in the home's kite.toml, written the way a person
//! would edit it (comments and layout kept, with toml_edit), and only if kite accepts the result:
//! an unknown key or a bad value is refused and the file is left as it was.

use super::Ctx;
use crate::output;
use anyhow::{Context, Result};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ConfigCmd {
    /// Set SECTION.KEY (e.g. `daemon.listen 0.0.0.0:7777`, `store.url postgres://...`,
    /// `merge.remote origin`, `daemon.tls false`). A value that is not TOML is taken as text.
    Set { key: String, value: String },
}

pub(crate) fn run(ctx: &Ctx, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Set { key, value } => set(ctx, &key, &value),
    }
}

fn set(ctx: &Ctx, key: &str, value: &str) -> Result<()> {
    let path = ctx.places.config_file();
    let (section, name) = key
        .split_once('.')
        .filter(|(s, n)| !s.is_empty() && !n.is_empty() && !n.contains('.'))
        .with_context(|| format!("'{key}' is not SECTION.KEY (like daemon.listen or store.url)"))?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().with_context(|| format!("{} is not valid TOML; fix it by hand first", path.display()))?;
    // A TOML value when it parses as one (false, 8, "x"), else the text itself.
    let parsed: toml_edit::Value = value.parse().unwrap_or_else(|_| toml_edit::Value::from(value));
    let table = doc
        .entry(section)
        .or_insert_with(toml_edit::table)
        .as_table_mut()
        .with_context(|| format!("[{section}] in {} is not a table", path.display()))?;
    table.insert(name, toml_edit::value(parsed));
    let new = doc.to_string();
    // Only what kite accepts is written.
    toml::from_str::<crate::config::Config>(&new).with_context(|| format!("kite would not accept {key} = {value}; {} is unchanged", path.display()))?;
    kite_core::files::write_atomic(&path, new.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    if ctx.json {
        return output::json(&serde_json::json!({"file": path, "key": key, "value": value}));
    }
    output::line(format!("{key} set in {} (a running daemon reads it when it starts again)", path.display()))
}
