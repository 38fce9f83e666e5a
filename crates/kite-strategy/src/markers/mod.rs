//! Work markers (`TODO`, `FIXME`, `XXX`, `HACK`) a maintainer would accept as tasks.
//!
//! A marker counts only when it opens the text of a comment line (found by [`lexer`], which
//! knows comments and strings): `// TODO: handle EOF`, `# FIXME(ana) …`, ` * XXX …`. A comment
//! that mentions the word ("one task per TODO marker"), a string, an identifier (`TODO_LIST`)
//! is not one. Files that are not the project's own work are skipped: test fixtures, vendored
//! code, generated files. A marker gated on a future condition ("when Python >= 3.13", "remove
//! in 3.0.0", "in the next major") is not work for today: it is kept apart with the reason, so
//! a dry run can say why it was not queued.

pub mod lexer;

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

/// A marker found in a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marker {
    pub line: usize,
    pub kind: String,
    /// The comment's text, starting with the marker.
    pub text: String,
    /// Why it is not work for today (a future condition), if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gated: Option<String>,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern:?} does not compile: {e}")))
}

/// Why a file's markers are not the project's work, if they are not.
pub fn skipped_path(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let dirs = &parts[..parts.len().saturating_sub(1)];
    let name = parts.last().copied().unwrap_or("");
    if dirs.iter().any(|d| matches!(*d, "fixtures" | "__fixtures__" | "fixture" | "testdata" | "test-data" | "test_data" | "snapshots" | "__snapshots__" | "golden" | "goldens")) {
        return Some("a test fixture");
    }
    if dirs.iter().any(|d| matches!(*d, "vendor" | "vendored" | "third_party" | "third-party" | "thirdparty" | "node_modules" | "external" | "deps" | "_deps" | ".git")) {
        return Some("vendored code");
    }
    static GENERATED: OnceLock<Regex> = OnceLock::new();
    let generated = re(&GENERATED, r"(\.min\.(js|css)|\.pb\.(go|rs|cc|h)|_pb2(_grpc)?\.pyi?|\.generated\.\w+|\.g\.dart|\.designer\.cs|\.lock|-lock\.json|\.snap)$");
    if generated.is_match(name) || dirs.iter().any(|d| matches!(*d, "dist" | "target" | "generated" | "__generated__" | "gen")) {
        return Some("a generated file");
    }
    None
}

/// Whether a file says it is generated in its first lines (`@generated`, "Code generated ... DO
/// NOT EDIT").
pub fn generated_header(text: &str) -> bool {
    static HEAD: OnceLock<Regex> = OnceLock::new();
    let head = re(&HEAD, r"(?i)@generated|code generated .* do not edit|do not edit.*(generated|this file)|auto-?generated (file|code|by)|this file (is|was) (auto-?)?generated");
    text.lines().take(8).any(|l| head.is_match(l))
}

/// The marker that opens a comment's text, if one does.
fn opening_marker(text: &str) -> Option<&'static str> {
    static OPEN: OnceLock<Regex> = OnceLock::new();
    let open = re(&OPEN, r"^(?:@|\\)?(TODO|FIXME|XXX|HACK)(?:\([^)]{0,40}\))?(?::|\s|$|!)");
    let c = open.captures(text)?;
    Some(match &c[1] {
        "TODO" => "TODO",
        "FIXME" => "FIXME",
        "XXX" => "XXX",
        _ => "HACK",
    })
}

/// Why a marker's text makes it not work for today (a version, a release, a condition in the
/// future), quoting what gates it.
pub fn future_gate(text: &str) -> Option<String> {
    static GATE: OnceLock<Regex> = OnceLock::new();
    let gate = re(
        &GATE,
        r"(?ix)
        \b(?:python|py|node|nodejs|go|golang|rust|rustc|msrv|java|jdk|ruby|php|django|rails|react|typescript|ts|gcc|clang|c\+\+|cmake|ios|android|api)\s*(?:>=|>|=>|≥|==|\d+(?:\.\d+)+\+)\s*v?\d+(?:\.\d+)*
      | (?:>=|≥)\s*v?\d+\.\d+
      | \b(?:in|for|by|until|after|before)\s+(?:v|version\s+|release\s+)?\d+\.\d+(?:\.\d+)?\b
      | \b(?:in|for|until|by)\s+(?:a\s+|the\s+)?(?:v|version\s*|release\s*)\d+\b
      | \b(?:once|when|after|until)\s+\S+(?:\s+\S+)?\s+(?:supports?|releases?|ships?|fixes|lands?|is\s+fixed|are\s+fixed|gets\s+fixed|works|throws|has|adds)\b
      | \b(?:in|for|with|until|after|before)\s+(?:the\s+)?(?:next|a\s+future|future|upcoming|a\s+later|later)\s+(?:major|minor|breaking|semver|release|version|api\s+version)
      | \bnext\s+(?:major|semver|breaking)\b
      | \b(?:when|once|after|until|as\s+soon\s+as)\b[^.;]{0,60}?\b(?:is\s+released|are\s+released|released|lands|is\s+merged|gets\s+merged|is\s+stable|becomes\s+stable|is\s+available|becomes\s+available|is\s+supported|drop(?:s|ped)?\s+support|is\s+deprecated|is\s+removed|support\s+(?:for\s+)?\S+\s+is\s+dropped|we\s+(?:drop|require|bump|upgrade|move\s+to|migrate|switch))
      | \b(?:when|once|after)\s+(?:we|the\s+project)\s+(?:drop|upgrade|bump|move|migrate|switch|require)
      | \bdeprecated?\b[^.;]{0,40}\bremove\b
      | \bremove\b(?:\s+[^\s.;]+){0,3}?\s+(?:in|for|after|when|once)\b(?:[^.;]|\.\d){0,40}
    ",
    );
    if let Some(m) = gate.find(text) {
        return Some(format!("gated on a future condition: \"{}\"", m.as_str().trim()));
    }
    // "once <something happens>" is a gate, "at once", "only once" and "once per call" are not.
    static ONCE: OnceLock<Regex> = OnceLock::new();
    let once = re(&ONCE, r"(?i)(\w+\s+)?\bonce\s+(\S+)[^.;]{0,50}");
    for c in once.captures_iter(text) {
        let before = c.get(1).map(|m| m.as_str().trim().to_ascii_lowercase()).unwrap_or_default();
        let next = c[2].to_ascii_lowercase();
        if matches!(before.as_str(), "at" | "only" | "than" | "exactly" | "just" | "least")
            || matches!(next.as_str(), "more" | "per" | "and" | "or" | "every" | "a" | "in" | "for" | "at" | "again")
        {
            continue;
        }
        let quoted = c.get(0).map_or("", |m| m.as_str()).trim_start_matches(&*c.get(1).map_or("", |m| m.as_str())).trim();
        return Some(format!("gated on a future condition: \"{quoted}\""));
    }
    None
}

/// The markers of a file, `path` relative to the project root: none for a skipped path, a
/// generated file or a language kite cannot lex.
pub fn scan(path: &str, text: &str) -> Vec<Marker> {
    if skipped_path(path).is_some() || generated_header(text) {
        return vec![];
    }
    let Some(syntax) = lexer::Syntax::for_file(path, text) else { return vec![] };
    let lines = lexer::comments(text, &syntax);
    let mut out = vec![];
    for (i, c) in lines.iter().enumerate() {
        // A marker after a commented-out line of code: `// foo(); // FIXME: fails`.
        // Not in a doc comment, and not inside backticks (an example in prose).
        let inner = syntax
            .line
            .iter()
            .filter(|_| !c.doc)
            .find_map(|l| c.text.rfind(&format!("{l} ")).filter(|at| c.text[..*at].matches('`').count() % 2 == 0).map(|at| c.text[at + l.len()..].trim().to_string()));
        let (kind, text) = match (opening_marker(&c.text), inner.as_deref().and_then(opening_marker)) {
            (Some(k), _) => (k, c.text.clone()),
            (None, Some(k)) => (k, inner.clone().unwrap_or_default()),
            (None, None) => continue,
        };
        // The comment lines right after it that are not markers themselves continue it: a gate
        // is often on the second line.
        let mut whole = text.clone();
        for next in lines[i + 1..].iter().take(3) {
            if next.line != lines[i].line + (whole.matches('\n').count() + 1) || opening_marker(&next.text).is_some() {
                break;
            }
            whole.push('\n');
            whole.push_str(&next.text);
        }
        let gated = future_gate(&whole.replace('\n', " "));
        out.push(Marker { line: c.line, kind: kind.to_string(), text, gated });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_opens_the_comment_text() {
        let src = "// TODO: handle EOF\n// One task per TODO marker.\n/// Explains that TODO markers are queued.\nlet TODO_LIST = \"// FIXME: string\";\n# not rust\n// FIXME(ana): soon\n// XXX\n// HACK - work around\n// TODOS are not markers\n";
        let got: Vec<(usize, String)> = scan("src/a.rs", src).into_iter().map(|m| (m.line, m.kind)).collect();
        assert_eq!(got, vec![(1, "TODO".into()), (6, "FIXME".into()), (7, "XXX".into()), (8, "HACK".into())]);
    }

    #[test]
    fn fixtures_vendored_and_generated_files_are_skipped() {
        let src = "// TODO: real\n";
        assert!(scan("tests/fixtures/sample.rs", src).is_empty());
        assert!(scan("vendor/lib/x.go", src).is_empty());
        assert!(scan("web/app.min.js", src).is_empty());
        assert!(scan("src/proto.pb.go", src).is_empty());
        assert!(scan("src/gen.rs", &format!("// Code generated by protoc. DO NOT EDIT.\n{src}")).is_empty());
        assert_eq!(scan("src/lib.rs", src).len(), 1);
    }

    #[test]
    fn markers_gated_on_a_future_condition_say_so() {
        for text in [
            "TODO: move to typing when Python >= 3.13",
            "TODO: Remove this in 3.0.0",
            "FIXME: should not return a Result. Fix this in the next semver",
            "TODO: use let-else once the MSRV is bumped, when we drop support for 1.60",
            "TODO(v2): drop this in the next major release",
            "TODO: remove when the upstream fix is released",
            "XXX: deprecated, remove after the migration",
            "TODO: Once ProGuard supports JDK 25, also remove the profile",
            "FIXME Gt is unused by cobra and should be removed in a version 2.",
            "FIXME: Re-enable this test once inner literal extraction works.",
            "TODO: remove cast after iter_lines rewrite",
            "TODO: Suppression is likely redundant once https://github.com/google/error-prone/pull/5895 is released",
        ] {
            assert!(future_gate(text).is_some(), "{text}");
        }
        for text in ["TODO: handle the case when x is None", "TODO: retry after a timeout", "FIXME: this breaks on Windows", "TODO: support 3 or more inputs", "TODO: compute this only once per call", "TODO: do both at once", "TODO: 10.8.3 can run on 16.20.2??"] {
            assert_eq!(future_gate(text), None, "{text}");
        }
        let two_lines = scan("a.rs", "// TODO: drop this shim\n// in the next major release.\nfn f() {}\n");
        assert!(two_lines[0].gated.is_some(), "the gate on the second comment line counts: {two_lines:?}");
        assert_eq!(two_lines[0].text, "TODO: drop this shim");
        let inner = scan("a.go", "// {\"--x\"}, // FIXME: This test case fails\n");
        assert_eq!(inner[0].text, "FIXME: This test case fails");
        assert!(scan("a.rs", "//! Found in comments: `// TODO: x`.\n// An example: `f(); // FIXME: y`.\n").is_empty(), "examples in prose are not markers");
        let m = scan("a.py", "x = 1  # TODO: Remove this in 3.0.0\n");
        assert_eq!(m[0].gated.as_deref(), Some("gated on a future condition: \"Remove this in 3.0.0\""));
    }
}
