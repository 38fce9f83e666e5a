//! The prompts kite ships, compiled into the binary so that the strategy loop and the hooks work
//! in any repository, not only in kite's own checkout. A project's `prompts/` adds templates and
//! overrides a built-in one of the same name; `kite sched eject NAME` writes a built-in into
//! `prompts/` for editing. The files themselves live in the repository's `prompts/`.

/// One shipped prompt: its file name in `prompts/` and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    pub file: &'static str,
    pub text: &'static str,
}

impl Builtin {
    /// The template name: the file name without `.md.tera`.
    pub fn name(&self) -> &'static str {
        self.file.strip_suffix(".md.tera").unwrap_or(self.file)
    }
}

macro_rules! shipped {
    ($($file:literal),* $(,)?) => {
        &[$(Builtin { file: $file, text: include_str!(concat!("../../../prompts/", $file)) }),*]
    };
}

/// Every shipped prompt: the strategy-loop templates, the session-start context and the
/// extraction prompt.
pub const PROMPTS: &[Builtin] = shipped!(
    "fix-failing-tests.md.tera",
    "github-issues.md.tera",
    "resolve-todo-markers.md.tera",
    "strategy-audit.md.tera",
    "quality-followups.md.tera",
    "session-start.md.tera",
    "extract.md.tera",
    "review.md.tera",
);

/// A shipped prompt by name (`session-start`) or file name (`session-start.md.tera`).
pub fn prompt(name: &str) -> Option<&'static Builtin> {
    PROMPTS.iter().find(|b| b.name() == name || b.file == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_prompts_is_shipped() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".md.tera"))
            .collect();
        files.sort();
        let mut shipped: Vec<String> = PROMPTS.iter().map(|b| b.file.to_string()).collect();
        shipped.sort();
        assert_eq!(files, shipped, "add the new prompt to PROMPTS");
        assert_eq!(prompt("session-start").unwrap().file, "session-start.md.tera");
        assert!(prompt("extract.md.tera").is_some() && prompt("nope").is_none());
    }
}
