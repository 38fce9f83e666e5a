//! Comments of a source file, found by a small lexer that knows where comments and string
//! literals start and end in the common languages, so that `"TODO"` in a string, `TODO_LIST` in
//! an identifier or a heredoc line never reads as a comment.
//!
//! It is not a parser: it tracks one state (code, a line comment, a block comment with its
//! nesting depth, or a string with its closing delimiter) and yields each comment line with its
//! 1-based line number and its text without the comment leader. What each language has is in
//! [`Syntax::for_path`]; a file whose language is unknown has no comments.

/// What a language's comments and strings look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub line: &'static [&'static str],
    /// (open, close, nests)
    pub block: Option<(&'static str, &'static str, bool)>,
    /// Quote characters that open a string closed by the same character, with `\` escapes.
    pub quotes: &'static [char],
    /// Triple-quoted strings (`"""`, `'''`).
    pub triple: bool,
    /// Backtick strings that may span lines (JavaScript templates, Go raw strings).
    pub backtick: bool,
    /// Rust raw strings (`r"…"`, `r#"…"#`) and lifetimes (`'a`, not a char).
    pub rust: bool,
    /// Shell and Ruby heredocs (`<<EOF`, `<<-EOF`, `<<~EOF`, `<<'EOF'`).
    pub heredoc: bool,
}

const NONE: Syntax = Syntax { line: &[], block: None, quotes: &[], triple: false, backtick: false, rust: false, heredoc: false };

const C_LIKE: Syntax = Syntax { line: &["//"], block: Some(("/*", "*/", false)), quotes: &['"', '\''], ..NONE };

impl Syntax {
    /// The syntax of a file by its name; `None` for a language kite does not know.
    pub fn for_path(path: &str) -> Option<Syntax> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        if matches!(lower.as_str(), "makefile" | "gnumakefile" | "dockerfile" | "containerfile" | "rakefile" | "gemfile" | "justfile" | "cmakelists.txt")
            || lower.starts_with("dockerfile.")
        {
            return Some(Syntax { line: &["#"], quotes: &['"', '\''], ..NONE });
        }
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "rs" => Syntax { block: Some(("/*", "*/", true)), rust: true, quotes: &['"'], ..C_LIKE },
            "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" | "m" | "mm" | "cs" | "java" | "proto" | "php" => C_LIKE,
            "kt" | "kts" | "scala" | "swift" | "dart" => Syntax { block: Some(("/*", "*/", true)), triple: true, ..C_LIKE },
            "go" => Syntax { backtick: true, ..C_LIKE },
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" | "vue" | "svelte" => Syntax { backtick: true, ..C_LIKE },
            "css" => Syntax { line: &[], ..C_LIKE },
            "scss" | "less" => C_LIKE,
            "py" | "pyi" => Syntax { line: &["#"], quotes: &['"', '\''], triple: true, ..NONE },
            "rb" | "rake" | "gemspec" => Syntax { line: &["#"], block: Some(("=begin", "=end", false)), quotes: &['"', '\''], heredoc: true, ..NONE },
            "sh" | "bash" | "zsh" | "ksh" | "fish" => Syntax { line: &["#"], quotes: &['"', '\''], heredoc: true, ..NONE },
            "pl" | "pm" | "r" | "nix" | "tf" | "hcl" | "cmake" | "mk" | "conf" | "yaml" | "yml" | "toml" | "ex" | "exs" | "jl" | "ps1" => {
                Syntax { line: &["#"], quotes: &['"', '\''], triple: matches!(ext, "ex" | "exs" | "jl" | "toml"), ..NONE }
            }
            "sql" => Syntax { line: &["--"], block: Some(("/*", "*/", false)), quotes: &['\''], ..NONE },
            "lua" => Syntax { line: &["--"], block: Some(("--[[", "]]", false)), quotes: &['"', '\''], ..NONE },
            "hs" | "elm" => Syntax { line: &["--"], block: Some(("{-", "-}", true)), quotes: &['"'], ..NONE },
            "html" | "htm" | "xml" | "xhtml" | "svg" | "md" | "markdown" | "vm" => Syntax { block: Some(("<!--", "-->", false)), ..NONE },
            "ini" | "cfg" => Syntax { line: &[";", "#"], ..NONE },
            "el" | "lisp" | "clj" | "cljs" | "scm" => Syntax { line: &[";"], quotes: &['"'], ..NONE },
            _ => return None,
        })
    }
}

impl Syntax {
    /// The syntax of a file by its name, or, for a script without a known extension, by its
    /// `#!` line (`#!/bin/sh`, `#!/usr/bin/env python3`).
    pub fn for_file(path: &str, text: &str) -> Option<Syntax> {
        Syntax::for_path(path).or_else(|| {
            let first = text.lines().next()?.strip_prefix("#!")?;
            let interpreter = first.split_whitespace().map(|w| w.rsplit('/').next().unwrap_or(w)).find(|w| *w != "env")?;
            let ext = match interpreter.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.') {
                "sh" | "bash" | "zsh" | "ksh" | "dash" => "sh",
                "python" => "py",
                "ruby" => "rb",
                "node" | "deno" | "bun" => "js",
                "perl" => "pl",
                _ => return None,
            };
            Syntax::for_path(&format!("x.{ext}"))
        })
    }
}

/// One line of a comment: its 1-based line number and its text without the comment leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentLine {
    pub line: usize,
    pub text: String,
    /// A documentation comment (`///`, `//!`, `/** */`, `#'`): prose about the code.
    pub doc: bool,
}

enum State {
    Code,
    Block { depth: usize, doc: bool },
    Str { close: String, escapes: bool },
    Heredoc { tag: String, strip: bool },
}

/// Every comment line of `text` in `syntax`, in order.
pub fn comments(text: &str, syntax: &Syntax) -> Vec<CommentLine> {
    let mut out = vec![];
    let mut state = State::Code;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let State::Heredoc { tag, strip } = &state {
            let t = if *strip { line.trim_start() } else { line };
            if t.trim_end() == tag {
                state = State::Code;
            }
            continue;
        }
        let b = line.as_bytes();
        let mut pos = 0;
        let mut pending_heredoc: Option<(String, bool)> = None;
        // Text of the block comment on this line, if one is open.
        let mut block_text = String::new();
        let mut in_block_on_line = matches!(state, State::Block { .. });
        let mut line_doc = matches!(state, State::Block { doc: true, .. });
        while pos < b.len() {
            match &mut state {
                State::Block { depth, doc } => {
                    let (open, close, nests) = syntax.block.expect("a block comment needs a block syntax");
                    if line[pos..].starts_with(close) {
                        *depth -= 1;
                        pos += close.len();
                        if *depth == 0 {
                            line_doc = *doc;
                            state = State::Code;
                            push_block(&mut out, n, &block_text, line_doc);
                            block_text.clear();
                            in_block_on_line = false;
                        }
                        continue;
                    }
                    if nests && line[pos..].starts_with(open) {
                        *depth += 1;
                        pos += open.len();
                        continue;
                    }
                    let c = line[pos..].chars().next().unwrap_or(' ');
                    block_text.push(c);
                    pos += c.len_utf8();
                }
                State::Str { close, escapes } => {
                    if *escapes && b[pos] == b'\\' {
                        pos = (pos + 2).min(b.len());
                        continue;
                    }
                    if line[pos..].starts_with(close.as_str()) {
                        pos += close.len();
                        state = State::Code;
                        continue;
                    }
                    pos += line[pos..].chars().next().map_or(1, char::len_utf8);
                }
                State::Heredoc { .. } => unreachable!("heredoc lines are skipped above"),
                State::Code => {
                    let rest = &line[pos..];
                    if let Some(leader) = syntax.line.iter().find(|l| rest.starts_with(**l)) {
                        // Lua's block opener starts like its line comment.
                        if !syntax.block.is_some_and(|(open, ..)| rest.starts_with(open) && open.starts_with(*leader) && open.len() > leader.len()) {
                            let body = &rest[leader.len()..];
                            let doc = (*leader == "//" && (body.starts_with('/') && !body.starts_with("//") || body.starts_with('!'))) || (*leader == "#" && body.starts_with('\''));
                            out.push(CommentLine { line: n, text: strip_leader(body), doc });
                            break;
                        }
                    }
                    if let Some((open, ..)) = syntax.block {
                        // Ruby's =begin only counts at the start of a line.
                        if rest.starts_with(open) && (open != "=begin" || pos == 0) {
                            let after = &rest[open.len()..];
                            let doc = open == "/*" && after.starts_with('*') && !after.starts_with("*/") || open == "/*" && after.starts_with('!');
                            state = State::Block { depth: 1, doc };
                            in_block_on_line = true;
                            line_doc = doc;
                            pos += open.len();
                            continue;
                        }
                    }
                    if syntax.rust {
                        if let Some((close, len)) = rust_raw_open(rest) {
                            state = State::Str { close, escapes: false };
                            pos += len;
                            continue;
                        }
                        if rest.starts_with('\'') {
                            pos += rust_quote_len(rest);
                            continue;
                        }
                    }
                    if syntax.triple && (rest.starts_with("\"\"\"") || rest.starts_with("'''")) {
                        state = State::Str { close: rest[..3].to_string(), escapes: true };
                        pos += 3;
                        continue;
                    }
                    if syntax.backtick && rest.starts_with('`') {
                        state = State::Str { close: "`".into(), escapes: true };
                        pos += 1;
                        continue;
                    }
                    if syntax.heredoc && rest.starts_with("<<") && pending_heredoc.is_none() {
                        if let Some((tag, strip, len)) = heredoc_open(&rest[2..]) {
                            pending_heredoc = Some((tag, strip));
                            pos += 2 + len;
                            continue;
                        }
                    }
                    let c = rest.chars().next().unwrap_or(' ');
                    if syntax.quotes.contains(&c) {
                        state = State::Str { close: c.to_string(), escapes: true };
                    }
                    pos += c.len_utf8();
                }
            }
        }
        if in_block_on_line {
            if let State::Block { .. } = state {
                push_block(&mut out, n, &block_text, line_doc);
            }
        }
        // A quoted string that is not closed on its line ends there (most languages), except the
        // multi-line kinds (triple quotes, backticks, raw strings), which go on.
        if let State::Str { close, .. } = &state {
            if close.len() == 1 && close != "`" && !syntax.rust {
                state = State::Code;
            }
        }
        if let Some((tag, strip)) = pending_heredoc {
            state = State::Heredoc { tag, strip };
        }
    }
    out
}

fn push_block(out: &mut Vec<CommentLine>, line: usize, text: &str, doc: bool) {
    let t = text.trim();
    let t = t.strip_prefix('*').map(str::trim_start).unwrap_or(t);
    let t = t.strip_prefix('!').filter(|_| doc).map(str::trim_start).unwrap_or(t);
    if !t.is_empty() {
        out.push(CommentLine { line, text: t.trim_end().to_string(), doc });
    }
}

/// The comment's text without its leader's repeats (`///`, `#!`, `---`) and spaces.
fn strip_leader(body: &str) -> String {
    body.trim_start_matches(['/', '!', '#', '-', '*', '\'', ';']).trim().to_string()
}

/// `r"`, `r#"`, `br##"`: the closing delimiter and the opener's length.
fn rust_raw_open(s: &str) -> Option<(String, usize)> {
    let s2 = s.strip_prefix('b').unwrap_or(s);
    let prefix = s.len() - s2.len();
    let rest = s2.strip_prefix('r')?;
    let hashes = rest.chars().take_while(|c| *c == '#').count();
    rest[hashes..].starts_with('"').then(|| (format!("\"{}", "#".repeat(hashes)), prefix + 1 + hashes + 1))
}

/// How far a `'` goes in Rust: a char literal (`'a'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`).
fn rust_quote_len(s: &str) -> usize {
    let mut chars = s.char_indices().skip(1);
    match chars.next() {
        Some((_, '\\')) => s[2..].find('\'').map_or(s.len(), |i| i + 3),
        Some((i, c)) => {
            let after = i + c.len_utf8();
            if s[after..].starts_with('\'') {
                after + 1
            } else {
                // A lifetime or a label: only the quote is consumed.
                1
            }
        }
        None => 1,
    }
}

/// `EOF`, `-EOF`, `~EOF`, `'EOF'`, `"EOF"` after `<<`: (tag, strip leading space, length).
fn heredoc_open(s: &str) -> Option<(String, bool, usize)> {
    let strip = s.starts_with('-') || s.starts_with('~');
    let body = if strip { &s[1..] } else { s };
    let quoted = body.starts_with('\'') || body.starts_with('"');
    let inner = if quoted { &body[1..] } else { body };
    let tag: String = inner.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if tag.is_empty() || !tag.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let len = usize::from(strip) + usize::from(quoted) * 2 + tag.len();
    Some((tag, strip, len.min(s.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str, path: &str) -> Vec<(usize, String)> {
        comments(src, &Syntax::for_path(path).unwrap()).into_iter().map(|c| (c.line, c.text)).collect()
    }

    #[test]
    fn strings_identifiers_raw_strings_lifetimes_and_nested_blocks() {
        let cases: [(&str, Vec<(usize, &str)>); 2] = [
            ("let s = \"// TODO: not a comment\";\nlet TODO_LIST = 1; // TODO: real\nlet c = '/'; // FIXME too\n", vec![(2, "TODO: real"), (3, "FIXME too")]),
            (
                "const T: &str = r#\"\n// TODO: inside a raw string\n\"#;\nfn f<'a>(x: &'a str) {} // TODO: after a lifetime\n/* outer /* inner */ TODO: still outer */\nlet x = 1;\n",
                vec![(4, "TODO: after a lifetime"), (5, "outer  inner  TODO: still outer")],
            ),
        ];
        for (src, want) in cases {
            let want: Vec<(usize, String)> = want.into_iter().map(|(n, t)| (n, t.to_string())).collect();
            assert_eq!(texts(src, "a.rs"), want, "{src}");
        }
    }

    #[test]
    fn doc_comments_are_marked() {
        let c = comments("/// Explains TODO markers.\n//! Crate docs\n/** Block doc */\n// plain\n", &Syntax::for_path("x.rs").unwrap());
        assert_eq!(c.iter().map(|c| c.doc).collect::<Vec<_>>(), vec![true, true, true, false]);
        assert_eq!(c[0].text, "Explains TODO markers.");
    }

    #[test]
    fn python_docstrings_and_shell_heredocs_are_strings() {
        let py = "def f():\n    \"\"\"TODO: in a docstring\n    still the docstring # TODO no\n    \"\"\"\n    x = '# TODO: in a string'  # TODO: real\n";
        assert_eq!(texts(py, "m.py"), vec![(5, "TODO: real".to_string())]);
        let sh = "cat <<EOF\n# TODO: heredoc text\nEOF\necho hi # TODO: real\ncat <<-'END'\n\t# FIXME: also text\n\tEND\n";
        assert_eq!(texts(sh, "run.sh"), vec![(4, "TODO: real".to_string())]);
    }

    #[test]
    fn js_templates_go_raw_strings_sql_and_markup() {
        assert_eq!(texts("const s = `\n// TODO: template\n`; // TODO: real\n", "a.ts"), vec![(3, "TODO: real".to_string())]);
        assert_eq!(texts("var s = `\n// TODO: raw\n` // XXX: real\n", "a.go"), vec![(3, "XXX: real".to_string())]);
        assert_eq!(texts("SELECT '-- TODO: no' -- TODO: yes\n", "q.sql"), vec![(1, "TODO: yes".to_string())]);
        assert_eq!(texts("<p>TODO: text</p>\n<!-- TODO: comment -->\n", "a.html"), vec![(2, "TODO: comment".to_string())]);
        assert_eq!(texts("key = \"# TODO: no\" # TODO: yes\n", "c.toml"), vec![(1, "TODO: yes".to_string())]);
    }

    #[test]
    fn multi_line_block_comments_give_each_line() {
        let src = "/*\n * Parses.\n * TODO: errors\n */\nint x;\n";
        assert_eq!(texts(src, "a.c"), vec![(2, "Parses.".to_string()), (3, "TODO: errors".to_string())]);
    }

    #[test]
    fn ruby_block_comments_and_unknown_files() {
        assert_eq!(texts("=begin\nTODO: in block\n=end\nx = 1 # FIXME: y\n", "a.rb"), vec![(2, "TODO: in block".to_string()), (4, "FIXME: y".to_string())]);
        assert!(Syntax::for_path("notes.txt").is_none());
        assert!(Syntax::for_path("Makefile").is_some());
        assert_eq!(Syntax::for_file("test/install from source", "#!/bin/sh\nset +e # TODO: fix\n"), Syntax::for_path("x.sh"));
        assert_eq!(Syntax::for_file("bin/tool", "#!/usr/bin/env python3\n"), Syntax::for_path("x.py"));
        assert!(Syntax::for_file("LICENSE", "MIT License\n").is_none());
    }
}
