//! Secret redaction, applied to every text before it reaches a note file, the index or an
//! extraction command.
//!
//! Transcripts are full of pasted keys, tokens and connection strings. A memory vault that is
//! committed to git and injected into every session must never carry them, so redaction errs on the
//! side of removing too much. Each pattern replaces only the secret part, keeping enough context
//! (`password=[REDACTED]`) for the note to stay readable.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Captures, Regex};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

struct Rule {
    name: &'static str,
    re: Regex,
    /// Capture group holding the secret; 0 replaces the whole match.
    group: usize,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let r = |name, pattern: &str, group| Rule {
            name,
            re: Regex::new(pattern).unwrap_or_else(|e| panic!("redaction rule {name} does not compile: {e}")),
            group,
        };
        vec![
            // PEM private keys, whole block (also a block cut off at the end of the text).
            r(
                "private-key",
                r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
                0,
            ),
            // Anthropic / OpenAI style keys.
            r("sk-key", r"\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{16,}", 0),
            // Stripe and similar live/test keys.
            r("stripe-key", r"\b(?:rk|pk|sk)_(?:live|test)_[A-Za-z0-9]{16,}", 0),
            // AWS access key ids.
            r("aws-key-id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b", 0),
            // GitHub tokens.
            r("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})", 0),
            // GitLab personal tokens.
            r("gitlab-token", r"\bglpat-[A-Za-z0-9_\-]{20,}", 0),
            // Slack tokens.
            r("slack-token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0),
            // Google API keys.
            r("google-key", r"\bAIza[0-9A-Za-z_\-]{35}", 0),
            // npm tokens.
            r("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b", 0),
            // JSON Web Tokens.
            r("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0),
            // Authorization headers.
            r("bearer", r"(?i)\b(?:bearer|token|basic)\s+([A-Za-z0-9_\-\.=+/~]{16,})", 1),
            // Passwords in URLs: scheme://user:password@host
            r("url-password", r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:([^\s@/]+)@", 1),
            // Assignments: password=..., api_key: "...", SECRET_TOKEN=..., "client_secret": "..."
            r(
                "assignment",
                r#"(?i)\b[a-z0-9_\-]*(?:password|passwd|pwd|secret|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?token|access[_\-]?token|refresh[_\-]?token|private[_\-]?key|credentials?)[a-z0-9_\-]*["']?\s*[:=]\s*["']?([^\s"',;}{]{4,})"#,
                1,
            ),
        ]
    })
}

/// Returns the text with every secret replaced by `[REDACTED]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    for rule in rules() {
        if !rule.re.is_match(&out) {
            continue;
        }
        let replaced = rule
            .re
            .replace_all(&out, |c: &Captures<'_>| {
                if rule.group == 0 {
                    return REDACTED.to_string();
                }
                let whole = c.get(0).map(|m| m.as_str()).unwrap_or("");
                match c.get(rule.group) {
                    Some(secret) if secret.as_str() != REDACTED && !secret.as_str().starts_with("[REDACTED") => {
                        let start = secret.start() - c.get(0).map(|m| m.start()).unwrap_or(0);
                        format!("{}{}{}", &whole[..start], REDACTED, &whole[start + secret.len()..])
                    }
                    _ => whole.to_string(),
                }
            })
            .into_owned();
        tracing::debug!(rule = rule.name, "redacted a secret");
        out = Cow::Owned(replaced);
    }
    out
}

/// Redacts a string in place; true when something was replaced.
pub fn redact_in_place(text: &mut String) -> bool {
    match redact(text) {
        Cow::Borrowed(_) => false,
        Cow::Owned(s) => {
            let changed = s != *text;
            *text = s;
            changed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &str) {
        assert_eq!(redact(input), expected, "input: {input:?}");
    }

    #[test]
    fn api_keys() {
        check("key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv here", "key [REDACTED] here");
        check("OPENAI sk-proj-abcdefghijklmnop1234", "OPENAI [REDACTED]");
        check("aws AKIAIOSFODNN7EXAMPLE ok", "aws [REDACTED] ok");
        check("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED]");
        check(
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
            "[REDACTED]",
        );
        check("slack xoxb-1234567890-abcdefghij", "slack [REDACTED]");
        check("stripe sk_live_abcdefghijklmnop1234", "stripe [REDACTED]");
    }

    #[test]
    fn tokens_and_headers() {
        check(
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "jwt [REDACTED]",
        );
        check("Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer [REDACTED]");
    }

    #[test]
    fn urls_and_assignments() {
        check("postgres://kite:hunter2secret@db:5432/x", "postgres://kite:[REDACTED]@db:5432/x");
        check("password=hunter2", "password=[REDACTED]");
        check("api_key: \"abcd1234efgh\"", "api_key: \"[REDACTED]\"");
        check("export DB_PASSWORD=s3cr3t!!", "export DB_PASSWORD=[REDACTED]");
        check(r#"{"client_secret": "zzzzyyyy"}"#, r#"{"client_secret": "[REDACTED]"}"#);
    }

    #[test]
    fn private_key_blocks() {
        check(
            "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----\nafter",
            "before\n[REDACTED]\nafter",
        );
        check("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz", "[REDACTED]");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for s in [
            "We decided to use SQLite in WAL mode.",
            "The password field is validated on submit.",
            "see https://example.com/path?x=1",
            "task-1234 depends on sk-8",
            "token budget is small",
        ] {
            check(s, s);
        }
    }

    #[test]
    fn idempotent() {
        let once = redact("password=hunter2 and sk-ant-AAAAAAAAAAAAAAAAAAAAAA").into_owned();
        assert_eq!(redact(&once), once);
    }
}
