//! Strategy-loop task templates: `prompts/*.md.tera` files with TOML front matter.
//!
//! A template says when it runs, how its tasks are keyed, prioritized and limited, and renders the
//! task title and body from the round's context. One file that does not load (bad front matter, a
//! tera syntax error, a bad cron expression) is reported with its path and the others still load:
//! a typo in one prompt must not stop the loop.
//!
//! ```text
//! +++
//! name = "fix-failing-tests"         # default: the file name without .md.tera
//! schedule = "*/10 * * * *"          # crontab (5 fields), seconds-first (6/7), @hourly, @every 10m;
//!                                    # absent: every tick
//! workstream = "tests"
//! priority = 20
//! title = "Fix failing test {{ item.name }}"      # tera; an empty title emits nothing
//! dedup_key = "test:{{ item.name }}"             # tera; default "<name>:<title>"
//! stale_after = "2h"
//! max_open = 10
//! files = ["{{ item.file }}"]                    # tera each; empty results are dropped
//! for_each = "tests.failures"                    # one candidate per item of this context list
//! uses = ["tests"]                               # shell context providers it needs
//! topic = "project status"                       # vault notes matching this become `vault`
//! agent = "claude"                                # strategy audit through Claude Code: body is the prompt, see audit
//! command = "my-llm"                              # ... or through a command of your own
//! retire_missing = true                          # the for_each list is complete: a pending task
//!                                                # it no longer has is resolved
//! expects_change = false                         # a task may end with nothing to commit (done,
//!                                                # "no changes"); default: that fails it
//! +++
//! The body: the task body (or, with `command`, the prompt).
//! ```
//!
//! Files that do not start with `+++` are not strategy templates (the extraction and injection
//! prompts live in the same directory) and are skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::{format_duration, parse_duration};
use crate::schedule::Cadence;

const FENCE: &str = "+++";

/// A template that could not be loaded or rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{file}: {message}")]
pub struct TemplateError {
    pub file: String,
    pub message: String,
}

/// The front matter as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub workstream: Option<String>,
    #[serde(default)]
    pub priority: i64,
    pub title: Option<String>,
    pub dedup_key: Option<String>,
    pub stale_after: Option<String>,
    pub max_open: Option<usize>,
    #[serde(default)]
    pub files: Vec<String>,
    pub for_each: Option<String>,
    #[serde(default)]
    pub uses: Vec<String>,
    pub topic: Option<String>,
    pub vault_k: Option<usize>,
    pub command: Option<String>,
    /// A strategy audit through an agent kite knows (`"claude"`: Claude Code through the
    /// adapter, read-only tools and no kite hooks), instead of a `command` string.
    pub agent: Option<String>,
    pub description: Option<String>,
    /// Its `for_each` list is complete (all open issues, all failing tests): a pending task whose
    /// key the list no longer has is resolved (see the planner).
    #[serde(default)]
    pub retire_missing: bool,
    /// Its tasks may end with nothing to commit (an investigation, a check): such a task is done
    /// with "no changes" instead of failed. Default true: a change is expected.
    pub expects_change: Option<bool>,
}

impl FrontMatter {
    /// A strategy audit: its body is a prompt for an agent (`agent`) or a command (`command`).
    pub fn is_audit(&self) -> bool {
        self.command.is_some() || self.agent.is_some()
    }
}

/// Where a template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped in the binary.
    Builtin,
    /// A file in the project's prompts/; `overrides` when a built-in of the same name is replaced.
    File { overrides: bool },
}

/// A loaded, compiled template.
#[derive(Debug)]
pub struct Template {
    pub name: String,
    /// The file it was read from (for a built-in: `built-in/<file name>`).
    pub file: PathBuf,
    pub origin: Origin,
    pub meta: FrontMatter,
    pub cadence: Cadence,
    pub stale_after: Option<Duration>,
    tera: tera::Tera,
    file_templates: usize,
}

/// One rendered task (or, for a command template, one rendered prompt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    pub title: String,
    pub body: String,
    pub dedup_key: Option<String>,
    pub files: Vec<String>,
}

/// What [`Template::render`] produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOutput {
    pub items: Vec<Rendered>,
    /// Why nothing was rendered, when the template was skipped (e.g. its `for_each` list is absent).
    pub skipped: Option<String>,
}

/// For `kite sched templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub name: String,
    pub file: String,
    /// "built-in", or the file in the project that adds or overrides the template.
    pub origin: String,
    /// True when a project file replaces a built-in template of the same name.
    #[serde(default)]
    pub overrides: bool,
    pub schedule: String,
    pub workstream: Option<String>,
    pub priority: i64,
    pub max_open: Option<usize>,
    pub stale_after: Option<String>,
    pub for_each: Option<String>,
    pub uses: Vec<String>,
    pub topic: Option<String>,
    pub command: Option<String>,
    /// The agent a strategy audit runs through (`"claude"`), when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub description: Option<String>,
}

/// Every template in a directory, and every file that failed.
#[derive(Debug, Default)]
pub struct TemplateSet {
    pub templates: Vec<Template>,
    pub errors: Vec<TemplateError>,
    /// `.md.tera` files without front matter: other prompts, not strategy templates.
    pub ignored: Vec<PathBuf>,
}

impl TemplateSet {
    /// The built-in templates (when `builtins`), then `dir/*.md.tera` in name order: a file adds
    /// a template, or replaces the built-in one of the same name.
    pub fn load(builtins: bool, dir: &Path) -> TemplateSet {
        let mut set = TemplateSet::default();
        if builtins {
            for b in crate::builtin::PROMPTS {
                if !b.text.trim_start().starts_with(FENCE) {
                    continue;
                }
                match Template::parse(&Path::new("built-in").join(b.file), b.text) {
                    Ok(mut t) => {
                        t.origin = Origin::Builtin;
                        set.templates.push(t);
                    }
                    Err(e) => set.errors.push(e),
                }
            }
        }
        set.load_files(dir);
        set
    }

    /// Only `dir/*.md.tera` (no built-ins). A missing directory is an empty set.
    pub fn load_dir(dir: &Path) -> TemplateSet {
        let mut set = TemplateSet::default();
        set.load_files(dir);
        set
    }

    fn load_files(&mut self, dir: &Path) {
        let set = self;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                set.errors.push(TemplateError { file: dir.display().to_string(), message: e.to_string() });
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".md.tera")))
            .collect();
        paths.sort();
        for path in paths {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    set.errors.push(TemplateError { file: path.display().to_string(), message: e.to_string() });
                    continue;
                }
            };
            if !text.trim_start().starts_with(FENCE) {
                set.ignored.push(path);
                continue;
            }
            match Template::parse(&path, &text) {
                Ok(mut t) => match set.templates.iter().position(|o| o.name == t.name) {
                    Some(i) if set.templates[i].origin == Origin::Builtin => {
                        t.origin = Origin::File { overrides: true };
                        set.templates[i] = t;
                    }
                    Some(_) => set.errors.push(TemplateError {
                        file: path.display().to_string(),
                        message: format!("another template is already named {:?}", t.name),
                    }),
                    None => set.templates.push(t),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "template not loaded");
                    // A broken override must not leave the built-in silently in its place
                    // looking like the user's: drop the built-in of that name too.
                    let name = stem(&path);
                    set.templates.retain(|o| !(o.origin == Origin::Builtin && o.name == name));
                    set.errors.push(e);
                }
            }
        }
    }
}

fn stem(path: &Path) -> String {
    let n = path.file_name().and_then(|n| n.to_str()).unwrap_or("template");
    n.strip_suffix(".md.tera").unwrap_or(n).to_string()
}

/// The error and every cause under it: tera's top-level message alone rarely says what is wrong.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl Template {
    /// Parses and compiles one template file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Template, TemplateError> {
        let fail = |message: String| TemplateError { file: path.display().to_string(), message };
        let rest = text.trim_start().strip_prefix(FENCE).ok_or_else(|| fail("no +++ front matter".into()))?;
        let end = rest
            .find("\n+++")
            .ok_or_else(|| fail("front matter is not closed by a +++ line".into()))?;
        let front = &rest[..end];
        let after = &rest[end + 4..];
        let body = after.strip_prefix("\r\n").or_else(|| after.strip_prefix('\n')).unwrap_or(after);
        let meta: FrontMatter = toml::from_str(front).map_err(|e| fail(format!("bad front matter: {e}")))?;

        let name = meta.name.clone().unwrap_or_else(|| stem(path));
        if name.trim().is_empty() {
            return Err(fail("empty name".into()));
        }
        let cadence = match &meta.schedule {
            None => Cadence::EveryTick,
            Some(s) => Cadence::parse(s).map_err(|e| fail(e.to_string()))?,
        };
        let stale_after = match &meta.stale_after {
            None => None,
            Some(s) => Some(parse_duration(s).map_err(|e| fail(format!("stale_after: {e}")))?),
        };
        if let Some(a) = meta.agent.as_deref().filter(|a| *a != "claude") {
            return Err(fail(format!("agent = {a:?}: the agent kite knows is \"claude\"; use `command` for another")));
        }
        if meta.agent.is_some() && meta.command.is_some() {
            return Err(fail("a template has `agent` or `command`, not both".into()));
        }
        if !meta.is_audit() && meta.title.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(fail("a template without `command` or `agent` needs a `title`".into()));
        }
        if meta.max_open == Some(0) {
            return Err(fail("max_open = 0 would prune everything; leave it out for no limit".into()));
        }

        let mut tera = tera::Tera::default();
        let mut parts: Vec<(String, &str)> = vec![("body".into(), body)];
        if let Some(t) = &meta.title {
            parts.push(("title".into(), t));
        }
        if let Some(k) = &meta.dedup_key {
            parts.push(("dedup_key".into(), k));
        }
        for (i, f) in meta.files.iter().enumerate() {
            parts.push((format!("files[{i}]"), f));
        }
        for (part, src) in &parts {
            tera.add_raw_template(part, src).map_err(|e| fail(format!("{part}: {}", chain(&e))))?;
        }
        Ok(Template { name, file: path.to_path_buf(), origin: Origin::File { overrides: false }, cadence, stale_after, file_templates: meta.files.len(), meta, tera })
    }

    pub fn info(&self) -> TemplateInfo {
        TemplateInfo {
            name: self.name.clone(),
            file: self.file.display().to_string(),
            origin: match self.origin {
                Origin::Builtin => "built-in".into(),
                Origin::File { .. } => self.file.display().to_string(),
            },
            overrides: self.origin == Origin::File { overrides: true },
            schedule: self.meta.schedule.clone().unwrap_or_else(|| self.cadence.describe()),
            workstream: self.meta.workstream.clone(),
            priority: self.meta.priority,
            max_open: self.meta.max_open,
            stale_after: self.stale_after.map(format_duration),
            for_each: self.meta.for_each.clone(),
            uses: self.meta.uses.clone(),
            topic: self.meta.topic.clone(),
            command: self.meta.command.clone(),
            agent: self.meta.agent.clone(),
            description: self.meta.description.clone(),
        }
    }

    /// The context names this template reads beyond the built-in ones: `uses` plus the root of
    /// `for_each`.
    pub fn needs(&self) -> Vec<String> {
        let mut v = self.meta.uses.clone();
        if let Some(root) = self.meta.for_each.as_deref().and_then(|p| p.split('.').next()) {
            if !v.iter().any(|x| x == root) {
                v.push(root.to_string());
            }
        }
        v
    }

    /// Renders against a context object: once, or once per item of the `for_each` list (as
    /// `item`, with `index`).
    pub fn render(&self, context: &Value) -> Result<RenderOutput, TemplateError> {
        let mut ctx = tera::Context::from_value(context.clone()).map_err(|e| TemplateError {
            file: self.file.display().to_string(),
            message: format!("context is not an object: {}", chain(&e)),
        })?;
        self.render_in(&mut ctx)
    }

    /// Renders against a prepared tera context. The scheduler builds one per tick and reuses it for
    /// every template (cloning a large context per template and item is what would cost); this sets
    /// `template`, and `item` and `index` per item, overwriting what the previous template left.
    pub fn render_in(&self, ctx: &mut tera::Context) -> Result<RenderOutput, TemplateError> {
        let fail = |message: String| TemplateError { file: self.file.display().to_string(), message };
        ctx.remove("item");
        ctx.remove("index");
        ctx.insert(
            "template",
            &serde_json::json!({
                "name": self.name, "priority": self.meta.priority, "workstream": self.meta.workstream,
                "topic": self.meta.topic,
            }),
        );
        let mut out = RenderOutput::default();
        let items: Vec<Option<Value>> = match &self.meta.for_each {
            None => vec![None],
            Some(path) => {
                let (root, rest) = path.split_once('.').unwrap_or((path.as_str(), ""));
                match ctx.get(root).and_then(|v| lookup(v, rest)) {
                    None => {
                        out.skipped = Some(format!("for_each list `{path}` is not in the context"));
                        return Ok(out);
                    }
                    Some(Value::Array(a)) => a.iter().cloned().map(Some).collect(),
                    Some(Value::Null) => vec![],
                    Some(other) => {
                        return Err(fail(format!("for_each `{path}` is a {}, not a list", kind(other))));
                    }
                }
            }
        };
        for (index, item) in items.into_iter().enumerate() {
            if let Some(item) = &item {
                ctx.insert("item", item);
                ctx.insert("index", &index);
            }
            let item = item.as_ref();
            let r = |part: &str| {
                self.tera
                    .render(part, ctx)
                    .map_err(|e| fail(format!("rendering {part}{}: {}", at(index, item), chain(&e))))
            };
            let title = match self.meta.title {
                Some(_) => one_line(&r("title")?),
                None => String::new(),
            };
            if !self.meta.is_audit() && title.is_empty() {
                continue;
            }
            let body = r("body")?.trim().to_string();
            let dedup_key = match self.meta.dedup_key {
                Some(_) => Some(one_line(&r("dedup_key")?)).filter(|k| !k.is_empty()),
                None => None,
            };
            let mut files = Vec::new();
            for i in 0..self.file_templates {
                let f = one_line(&r(&format!("files[{i}]"))?);
                if !f.is_empty() && !files.contains(&f) {
                    files.push(f);
                }
            }
            out.items.push(Rendered { title, body, dedup_key, files });
        }
        Ok(out)
    }
}

fn at(index: usize, item: Option<&Value>) -> String {
    match item {
        Some(_) => format!(" (item {index})"),
        None => String::new(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// `a.b.0.c` into a JSON value.
pub fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').filter(|s| !s.is_empty()).try_fold(v, |cur, seg| match cur {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Template, TemplateError> {
        Template::parse(Path::new("prompts/t.md.tera"), text)
    }

    fn check(text: &str, ctx: Value, expected: Vec<(&str, &str, Option<&str>, Vec<&str>)>) {
        let t = parse(text).unwrap();
        let out = t.render(&ctx).unwrap();
        let got: Vec<_> = out
            .items
            .iter()
            .map(|r| (r.title.as_str(), r.body.as_str(), r.dedup_key.as_deref(), r.files.iter().map(String::as_str).collect()))
            .collect::<Vec<(&str, &str, Option<&str>, Vec<&str>)>>();
        assert_eq!(got, expected);
    }

    const PER_TEST: &str = r#"+++
schedule = "*/5 * * * *"
priority = 7
title = "Fix {{ item.name }}"
dedup_key = "test:{{ item.name }}"
files = ["{{ item.file | default(value='') }}"]
for_each = "tests.failures"
stale_after = "2h"
+++
Test `{{ item.name }}` fails:
{{ item.message }}
"#;

    #[test]
    fn one_candidate_per_item() {
        check(
            PER_TEST,
            json!({"tests": {"failures": [
                {"name": "a::b", "message": "boom", "file": "src/a.rs"},
                {"name": "c", "message": "bang"}
            ]}}),
            vec![
                ("Fix a::b", "Test `a::b` fails:\nboom", Some("test:a::b"), vec!["src/a.rs"]),
                ("Fix c", "Test `c` fails:\nbang", Some("test:c"), vec![]),
            ],
        );
        let t = parse(PER_TEST).unwrap();
        assert_eq!(t.name, "t");
        assert_eq!(t.stale_after, Some(Duration::from_secs(7200)));
        assert_eq!(t.needs(), vec!["tests".to_string()]);
        let out = t.render(&json!({})).unwrap();
        assert!(out.items.is_empty());
        assert!(out.skipped.unwrap().contains("tests.failures"));
        let err = t.render(&json!({"tests": {"failures": 3}})).unwrap_err();
        assert!(err.message.contains("is a number, not a list"), "{err}");
    }

    #[test]
    fn single_and_conditional() {
        let text = "+++\ntitle = \"{% if git.dirty %}Commit {{ git.branch }}{% endif %}\"\n+++\nbody\n";
        check(text, json!({"git": {"dirty": true, "branch": "main"}}), vec![("Commit main", "body", None, vec![])]);
        check(text, json!({"git": {"dirty": false, "branch": "main"}}), vec![]);
    }

    #[test]
    fn broken_templates_name_the_file_and_the_problem() {
        let cases = [
            ("+++\ntitle = \"x\"\n", "not closed"),
            ("+++\ntitle = x\n+++\n", "bad front matter"),
            ("+++\ntitle = \"x\"\nbogus = 1\n+++\n", "unknown field"),
            ("+++\ntitle = \"{{ x \"\n+++\n", "title"),
            ("+++\ntitle = \"x\"\n+++\n{% if %}\n", "body"),
            ("+++\ntitle = \"x\"\nschedule = \"* *\"\n+++\n", "bad schedule"),
            ("+++\ntitle = \"x\"\nstale_after = \"soon\"\n+++\n", "stale_after"),
            ("+++\nname = \"n\"\n+++\nbody", "needs a `title`"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().starts_with("prompts/t.md.tera: "), "{e}");
            assert!(e.message.contains(want), "{text:?}: {e}");
        }
        // A render-time error (unknown variable) also names the file and the part.
        let t = parse("+++\ntitle = \"{{ nope.x }}\"\n+++\n").unwrap();
        let e = t.render(&json!({})).unwrap_err();
        assert!(e.message.contains("rendering title"), "{e}");
    }

    #[test]
    fn directory_loads_good_skips_plain_and_reports_bad() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md.tera"), PER_TEST).unwrap();
        std::fs::write(dir.path().join("b.md.tera"), "+++\ntitle = \"{{\"\n+++\n").unwrap();
        std::fs::write(dir.path().join("extract.md.tera"), "plain prompt {{ x }}").unwrap();
        std::fs::write(dir.path().join("c.md.tera"), "+++\nname = \"a\"\ntitle = \"dup\"\n+++\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let set = TemplateSet::load_dir(dir.path());
        assert_eq!(set.templates.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(set.errors.len(), 2, "{:?}", set.errors);
        assert!(set.errors[0].file.ends_with("b.md.tera"));
        assert!(set.errors[1].message.contains("already named"));
        assert_eq!(set.ignored.len(), 1);
        assert_eq!(TemplateSet::load_dir(&dir.path().join("missing")).templates.len(), 0);
    }

    #[test]
    fn lookup_paths() {
        let v = json!({"a": {"b": [10, {"c": 3}]}});
        assert_eq!(lookup(&v, "a.b.1.c"), Some(&json!(3)));
        assert_eq!(lookup(&v, "a.x"), None);
    }
}

/// The templates shipped in the repository's prompts/ load and render, with every provider present
/// and with none (a round whose providers all failed must not break them).
#[cfg(test)]
mod shipped {
    use super::*;
    use serde_json::json;

    /// The built-in set, as a project with no prompts/ of its own sees it.
    fn shipped() -> TemplateSet {
        TemplateSet::load(true, Path::new("/nonexistent/prompts"))
    }

    #[test]
    fn a_project_file_adds_or_overrides_and_builtins_can_be_off() {
        let dir = tempfile::tempdir().unwrap();
        let own = "+++\ntitle = 'x'\n+++\nbody\n";
        std::fs::write(dir.path().join("strategy-audit.md.tera"), own).unwrap();
        std::fs::write(dir.path().join("mine.md.tera"), own).unwrap();
        let set = TemplateSet::load(true, dir.path());
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        let names: Vec<(&str, &Origin)> = set.templates.iter().map(|t| (t.name.as_str(), &t.origin)).collect();
        assert!(names.contains(&("fix-failing-tests", &Origin::Builtin)), "{names:?}");
        assert!(names.contains(&("strategy-audit", &Origin::File { overrides: true })), "{names:?}");
        assert!(names.contains(&("mine", &Origin::File { overrides: false })), "{names:?}");
        assert_eq!(set.templates.iter().filter(|t| t.name == "strategy-audit").count(), 1);
        assert_eq!(get(&set, "strategy-audit").info().origin, dir.path().join("strategy-audit.md.tera").display().to_string());
        assert_eq!(get(&set, "fix-failing-tests").info().origin, "built-in");
        let only = TemplateSet::load(false, dir.path());
        assert_eq!(only.templates.len(), 2);
        // A broken override is an error, and the built-in does not stand in for it.
        std::fs::write(dir.path().join("resolve-todo-markers.md.tera"), "+++\nnot toml [\n+++\n").unwrap();
        let set = TemplateSet::load(true, dir.path());
        assert!(set.errors.iter().any(|e| e.file.ends_with("resolve-todo-markers.md.tera")), "{:?}", set.errors);
        assert!(!set.templates.iter().any(|t| t.name == "resolve-todo-markers"));
    }

    fn get<'a>(set: &'a TemplateSet, name: &str) -> &'a Template {
        set.templates.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name}: {:?}", set.errors))
    }

    fn full() -> Value {
        json!({
            "git": {
                "branch": "main", "head": "abc", "commits": [{"sha": "abc", "author": "a", "time": 1, "subject": "add x"}],
                "changed_files": ["src/x.rs"], "dirty_files": [],
                "markers": [{"file": "src/x.rs", "line": 3, "kind": "TODO", "text": "TODO: handle the error case properly"}]
            },
            "queue": {
                "counts": {"pending": 1, "active": 0, "done": 2, "failed": 1, "pruned": 0},
                "open": [{"id": 4, "title": "open one", "status": "pending", "template": null}],
                "recent": {"done": [], "failed": [{"id": 3, "title": "failed one"}], "pruned": []}
            },
            "tests": {"failed": 2, "passed": 1, "failures": [
                {"name": "a::b", "file": "src/a.rs", "line": 7, "message": "assertion failed"},
                {"name": "build", "file": "", "line": 0, "message": "error[E0425]"}
            ]},
            "vault": [{"id": "n", "title": "Status: sched", "kind": "status", "score": 1.0, "body": "runner done"}]
        })
    }

    #[test]
    fn shipped_templates_render() {
        let set = shipped();
        for name in ["fix-failing-tests", "resolve-todo-markers", "strategy-audit"] {
            assert!(!set.errors.iter().any(|e| e.file.contains(name)), "{:?}", set.errors);
            get(&set, name);
        }

        let out = get(&set, "fix-failing-tests").render(&full()).unwrap();
        assert_eq!(out.items.len(), 2);
        assert_eq!(out.items[0].title, "Fix failing test a::b");
        assert_eq!(out.items[0].dedup_key.as_deref(), Some("test:a::b"));
        assert_eq!(out.items[0].files, vec!["src/a.rs".to_string()]);
        assert!(out.items[0].body.contains("(at src/a.rs:7)") && out.items[0].body.contains("assertion failed"));
        assert!(out.items[0].body.contains("branch `main`, last commit \"add x\""), "{}", out.items[0].body);
        assert!(out.items[1].body.starts_with("The workspace does not build"), "{}", out.items[1].body);
        assert!(out.items[1].files.is_empty());

        let out = get(&set, "resolve-todo-markers").render(&full()).unwrap();
        assert_eq!(out.items.len(), 1);
        assert_eq!(out.items[0].title, "TODO: handle the error case properly (src/x.rs)");
        assert_eq!(out.items[0].dedup_key.as_deref(), Some("marker:src/x.rs:todo-handle-the-error-case-properly"));
        assert!(out.items[0].body.contains("src/x.rs:3: TODO: handle"));

        let audit = get(&set, "strategy-audit");
        assert_eq!(audit.meta.agent.as_deref(), Some("claude"));
        assert!(audit.meta.is_audit());
        let out = audit.render(&full()).unwrap();
        let prompt = &out.items[0].body;
        assert!(prompt.contains("### Status: sched (status)") && prompt.contains("runner done"), "{prompt}");
        assert!(prompt.contains("- #4 open one (pending)") && prompt.contains("- #3 failed one"), "{prompt}");
        assert!(prompt.contains("- add x") && prompt.contains("Reply with only a JSON array"), "{prompt}");
    }

    #[test]
    fn shipped_templates_survive_missing_providers() {
        let set = shipped();
        let empty = json!({});
        let out = get(&set, "fix-failing-tests").render(&empty).unwrap();
        assert!(out.items.is_empty() && out.skipped.is_some());
        let out = get(&set, "resolve-todo-markers").render(&empty).unwrap();
        assert!(out.items.is_empty() && out.skipped.is_some());
        let out = get(&set, "strategy-audit").render(&json!({"vault": []})).unwrap();
        assert!(out.items[0].body.contains("(no status notes yet)"));
        assert!(out.items[0].body.contains("(the queue could not be read this round)"));
        // Tests present but git missing.
        let mut ctx = full();
        ctx.as_object_mut().unwrap().remove("git");
        let out = get(&set, "fix-failing-tests").render(&ctx).unwrap();
        assert_eq!(out.items.len(), 2);
    }
}
