//! The `quality` source: landed tasks whose work did not stay, for the built-in
//! `quality-followups` template to propose a follow-up for each, with the reason. A task is poor
//! when a later commit reverted it, or when less than `[sched.quality] min_survival_7d` of its
//! lines were still there 7 days after it landed (read from git by `kite_quality`).

use std::path::Path;

use serde_json::{json, Value};

use crate::queue::{ListFilter, Queue};
use crate::score::QualityRule;
use crate::{Provided, SourceError};

/// `quality`: `{poor: [{task, title, template, why, files}]}`, oldest first.
/// The signals are the daemon's snapshot in `home` when it is current (`kite_quality::snapshot`),
/// else read from git now.
pub async fn quality_context(repo: &Path, home: Option<&Path>, target: Option<&str>, queue: &dyn Queue, rule: &QualityRule) -> Result<Provided, SourceError> {
    let target = match target {
        Some(t) => t.to_string(),
        None => match kite_git::main_branch(repo).await? {
            Some(b) => b,
            None => return Ok(Provided::Unavailable("no branch is checked out to measure landed work on".into())),
        },
    };
    let now = kite_quality::unix_now();
    let snapshot = match home {
        Some(h) => kite_quality::snapshot::current(repo, h, &target, now).await,
        None => None,
    };
    let signals = match snapshot {
        Some(snap) => snap.signals,
        None => {
            let Some(history) = kite_quality::History::read_if_any(repo, &target).await? else {
                return Ok(Provided::Unavailable(format!("no branch {target} yet: nothing has landed")));
            };
            kite_quality::signals::compute(repo, &history, None, now).await?
        }
    };
    let poor: Vec<(&kite_quality::Signals, String)> = signals
        .iter()
        .filter_map(|s| {
            let why = if let Some(by) = &s.reverted_by {
                format!("a later commit ({}) reverted it", &by[..by.len().min(10)])
            } else {
                let kept = s.survival_7d.filter(|x| *x < rule.min_survival_7d)?;
                format!("only {:.0}% of the {} lines it added were still there 7 days after it landed", kept * 100.0, s.added)
            };
            Some((s, why))
        })
        .collect();
    let ids: Vec<i64> = poor.iter().map(|(s, _)| s.task).collect();
    let tasks = if ids.is_empty() { vec![] } else { queue.list(&ListFilter { ids: Some(ids), ..Default::default() }).await? };
    let items: Vec<Value> = poor
        .iter()
        .filter_map(|(s, why)| {
            let t = tasks.iter().find(|t| t.id == s.task)?;
            Some(json!({"task": t.id, "title": t.title, "template": t.template, "why": why, "files": s.files}))
        })
        .collect();
    Ok(Provided::Context(json!({"target": target, "poor": items})))
}
