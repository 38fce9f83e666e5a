//! The map is true: every file path ARCHITECTURE.md and the crate READMEs cite exists in the tree
//! (a path in backticks, resolved against the repository, a crate, or a crate's `src/`).

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Backticked words that name a file of the tree: a relative path with a known extension.
fn cited_paths(text: &str) -> Vec<String> {
    let exts = [".rs", ".md", ".toml", ".sql", ".py", ".sh", ".tera", ".json"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| w.contains('/') && exts.iter().any(|e| w.ends_with(e)))
        .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c)))
        .filter(|w| !w.starts_with('/') && !w.starts_with("~") && !w.contains("..") && !w.starts_with("prompts/t."))
        .map(str::to_string)
        .collect()
}

fn candidates(doc: &Path, p: &str) -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut c = vec![root.join(p), doc.parent().unwrap().join(p), doc.parent().unwrap().join("src").join(p)];
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        c.push(krate.path().join(p));
        c.push(krate.path().join("src").join(p));
    }
    c
}

#[test]
fn every_path_the_map_cites_exists() {
    let root = Path::new(ROOT);
    let mut docs = vec![root.join("ARCHITECTURE.md")];
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let readme = krate.path().join("README.md");
        if readme.exists() {
            docs.push(readme);
        }
    }
    let mut missing = vec![];
    let mut checked = 0;
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for p in cited_paths(&text) {
            checked += 1;
            if !candidates(doc, &p).iter().any(|c| c.exists()) {
                missing.push(format!("{}: {p}", doc.strip_prefix(root).unwrap().display()));
            }
        }
    }
    assert!(checked > 10, "the test reads the map ({checked} paths)");
    assert!(missing.is_empty(), "cited but not in the tree:\n{}", missing.join("\n"));
}
