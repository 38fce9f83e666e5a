//! The planner: given the open tasks and this round's candidates, decide what to queue and what to
//! prune, and why.
//!
//! Pure and synchronous (no I/O, no clock) so every rule is unit tested and one tick over 10,000
//! tasks stays in milliseconds. The rules, in order:
//!
//! 1. **Supersession.** Among candidates with one dedup key, the last emitted wins. Among open tasks
//!    with one key, the newest wins and older pending ones are superseded by it. A candidate whose key
//!    an open task already carries with the same title and body is *unchanged* (not queued again:
//!    that is what keeps a template that fires every minute from flooding the queue); with new
//!    content it supersedes the pending tasks — unless one of them is active or has dependents,
//!    then the candidate is held back instead, because work in progress and dependency edges are
//!    worth more than a fresher wording.
//!    A template whose listing this round is complete (`retire_missing`: the open issues, the
//!    failing tests) *resolves* its pending tasks whose key the listing no longer carries: the
//!    issue was closed, the test passes.
//! 2. **Staleness.** A pending task older than its stale-after is pruned.
//! 3. **Dependencies.** A pending task whose dependency failed or was pruned (before or in this
//!    round, transitively) is pruned.
//! 4. **Capacity.** Per template (`max_open`) and globally, open tasks plus new candidates beyond the
//!    limit are cut, lowest score first. Active tasks and tasks a person or agent filed by hand (no
//!    template) count toward the limits but are never cut: generated work must not evict explicit
//!    requests. Step 3 runs again for whatever depended on a cut task.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::queue::PruneKind;
use crate::score::{Score, ScoreInput, ScoreWeights, TrackRecord};
use crate::task::{FileSet, NewTask, Task, TaskStatus};

/// A task a template proposes this round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub template: String,
    pub title: String,
    pub body: String,
    pub priority: i64,
    pub files: Vec<String>,
    pub dedup_key: String,
    pub stale_after_secs: Option<u64>,
    pub workstream: Option<String>,
}

impl Candidate {
    pub fn to_new_task(&self) -> NewTask {
        NewTask {
            title: self.title.clone(),
            body: self.body.clone(),
            priority: self.priority,
            depends_on: vec![],
            files: self.files.clone(),
            dedup_key: Some(self.dedup_key.clone()),
            stale_after_secs: self.stale_after_secs,
            workstream: self.workstream.clone(),
            template: Some(self.template.clone()),
            cwd: None,
        }
    }
}

/// What the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub now_ms: i64,
    /// The open (pending and active) tasks, plus any task they depend on, in any status.
    pub tasks: &'a [Task],
    pub candidates: &'a [Candidate],
    /// `max_open` per template name.
    pub max_open: &'a HashMap<String, usize>,
    /// Cap on all open tasks together.
    pub max_open_global: Option<usize>,
    /// Completions, failures and prunes per template.
    pub track: &'a BTreeMap<String, TrackRecord>,
    pub weights: &'a ScoreWeights,
    /// Templates whose candidates this round are their complete listing, with what the listing
    /// is (`issues.open`): their pending tasks with a key no candidate carries are resolved.
    pub complete: &'a HashMap<String, String>,
}

/// A task or a candidate (by index into this round's candidates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    Task { id: i64 },
    Candidate { index: usize },
}

/// One prune or supersession and its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub target: Target,
    pub title: String,
    pub template: Option<String>,
    pub kind: PruneKind,
    pub reason: String,
    pub superseded_by: Option<Target>,
    pub score: Score,
}

/// A candidate not queued because an open task already carries its dedup key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unchanged {
    pub index: usize,
    pub task_id: i64,
    pub reason: String,
}

/// The planner's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Score of every candidate, by index.
    pub candidate_scores: Vec<Score>,
    /// Candidates to create, by index, best first.
    pub queue: Vec<usize>,
    pub unchanged: Vec<Unchanged>,
    pub superseded: Vec<Decision>,
    pub pruned: Vec<Decision>,
}

impl Plan {
    /// Whether a task or candidate was pruned or superseded.
    pub fn decision_for(&self, target: Target) -> Option<&Decision> {
        self.superseded.iter().chain(&self.pruned).find(|d| d.target == target)
    }
}

/// Per-item working state.
struct Item<'a> {
    target: Target,
    title: &'a str,
    template: Option<&'a str>,
    score: Score,
    /// Pending task or candidate: may be pruned. Active: counts only.
    cuttable: bool,
    /// Came from a template (candidates, and tasks with `template` set): may be cut for capacity.
    generated: bool,
    alive: bool,
    created_at: i64,
}

/// Runs the rules. See the module documentation.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let w = input.weights;
    let by_id: HashMap<i64, &Task> = input.tasks.iter().map(|t| (t.id, t)).collect();
    let open: Vec<&Task> = input.tasks.iter().filter(|t| t.status.is_open()).collect();

    // Who depends on whom, among open tasks.
    let mut dependents: HashMap<i64, Vec<i64>> = HashMap::new();
    for t in &open {
        for d in &t.depends_on {
            dependents.entry(*d).or_default().push(t.id);
        }
    }
    let active_files = FileSet::new(
        open.iter().filter(|t| t.status == TaskStatus::Active).flat_map(|t| t.files.iter().map(String::as_str)),
    );
    let conflicts = |files: &[String]| files.iter().filter(|f| active_files.overlaps(f)).count();

    // Items: open tasks first, then candidates.
    let mut items: Vec<Item<'_>> = Vec::with_capacity(open.len() + input.candidates.len());
    let mut task_item: HashMap<i64, usize> = HashMap::with_capacity(open.len());
    for t in &open {
        let active = t.status == TaskStatus::Active;
        let score = Score::compute(
            &ScoreInput {
                priority: t.priority,
                age_ms: input.now_ms - t.created_at_ms,
                unblocks: dependents.get(&t.id).map_or(0, Vec::len),
                conflicting_files: if active { 0 } else { conflicts(&t.files) },
                track: t.template.as_ref().and_then(|n| input.track.get(n)).copied(),
            },
            w,
        );
        task_item.insert(t.id, items.len());
        items.push(Item {
            target: Target::Task { id: t.id },
            title: &t.title,
            template: t.template.as_deref(),
            score,
            cuttable: !active,
            generated: t.template.is_some(),
            alive: true,
            created_at: t.created_at_ms,
        });
    }
    let first_candidate = items.len();
    let mut candidate_scores = Vec::with_capacity(input.candidates.len());
    for (i, c) in input.candidates.iter().enumerate() {
        let score = Score::compute(
            &ScoreInput {
                priority: c.priority,
                age_ms: 0,
                unblocks: 0,
                conflicting_files: conflicts(&c.files),
                track: input.track.get(&c.template).copied(),
            },
            w,
        );
        candidate_scores.push(score);
        items.push(Item {
            target: Target::Candidate { index: i },
            title: &c.title,
            template: Some(&c.template),
            score,
            cuttable: true,
            generated: true,
            alive: true,
            created_at: input.now_ms,
        });
    }
    let mut out = Plan { candidate_scores, ..Default::default() };

    // 1. Supersession. Newest open task per key.
    let mut open_by_key: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in &open {
        if let Some(k) = t.dedup_key.as_deref().filter(|k| !k.is_empty()) {
            open_by_key.entry(k).or_default().push(t);
        }
    }
    let mut keys: Vec<&str> = open_by_key.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let group = open_by_key.get_mut(key).expect("key from the map");
        group.sort_by_key(|t| (t.created_at_ms, t.id));
        let newest = group[group.len() - 1];
        for old in &group[..group.len() - 1] {
            if old.status == TaskStatus::Pending {
                let reason = format!("task #{} carries the same dedup key and is newer", newest.id);
                let d = decide(
                    &mut items,
                    task_item[&old.id],
                    PruneKind::Superseded,
                    reason,
                    Some(Target::Task { id: newest.id }),
                );
                out.superseded.push(d);
            }
        }
    }
    // Last candidate per key wins.
    let mut cand_by_key: HashMap<&str, usize> = HashMap::new();
    for (i, c) in input.candidates.iter().enumerate() {
        if let Some(prev) = cand_by_key.insert(c.dedup_key.as_str(), i) {
            let reason = format!("candidate {i} of this round carries the same dedup key");
            let d = decide(
                &mut items,
                first_candidate + prev,
                PruneKind::Superseded,
                reason,
                Some(Target::Candidate { index: i }),
            );
            out.superseded.push(d);
        }
    }
    let mut winners: Vec<(usize, &str)> = cand_by_key.iter().map(|(k, i)| (*i, *k)).collect();
    winners.sort_unstable();
    for (i, key) in winners {
        let Some(group) = open_by_key.get(key) else { continue };
        let c = &input.candidates[i];
        let newest = group[group.len() - 1];
        if newest.title == c.title && newest.body == c.body {
            out.unchanged.push(Unchanged {
                index: i,
                task_id: newest.id,
                reason: format!("task #{} already carries it", newest.id),
            });
            items[first_candidate + i].alive = false;
            continue;
        }
        let holder = group.iter().filter(|t| items[task_item[&t.id]].alive).find(|t| {
            t.status == TaskStatus::Active || dependents.get(&t.id).is_some_and(|v| !v.is_empty())
        });
        if let Some(h) = holder {
            let why = if h.status == TaskStatus::Active { "is active" } else { "has dependents" };
            out.unchanged.push(Unchanged {
                index: i,
                task_id: h.id,
                reason: format!("task #{} carries the key and {why}; held back", h.id),
            });
            items[first_candidate + i].alive = false;
            continue;
        }
        let alive: Vec<i64> = group.iter().filter(|t| items[task_item[&t.id]].alive).map(|t| t.id).collect();
        for id in alive {
            let reason = format!("this round's candidate {:?} carries the same dedup key", c.title);
            let d = decide(
                &mut items,
                task_item[&id],
                PruneKind::Superseded,
                reason,
                Some(Target::Candidate { index: i }),
            );
            out.superseded.push(d);
        }
    }

    // 1b. Resolution: a complete listing that no longer carries a pending task's key.
    for t in &open {
        let idx = task_item[&t.id];
        let (Some(template), Some(key)) = (t.template.as_deref(), t.dedup_key.as_deref()) else { continue };
        let Some(listing) = input.complete.get(template) else { continue };
        if t.status != TaskStatus::Pending || !items[idx].alive || cand_by_key.contains_key(key) {
            continue;
        }
        let reason = format!("resolved: `{listing}` no longer has it");
        let d = decide(&mut items, idx, PruneKind::Superseded, reason, None);
        out.superseded.push(d);
    }

    // 2. Staleness.
    for t in &open {
        let idx = task_item[&t.id];
        if t.status != TaskStatus::Pending || !items[idx].alive {
            continue;
        }
        if let Some(secs) = t.stale_after_secs {
            let age_ms = input.now_ms - t.created_at_ms;
            if age_ms > (secs as i64).saturating_mul(1000) {
                let reason = format!(
                    "{} old, stale after {}",
                    crate::duration::format_duration(std::time::Duration::from_secs((age_ms / 1000) as u64)),
                    crate::duration::format_duration(std::time::Duration::from_secs(secs)),
                );
                let d = decide(&mut items, idx, PruneKind::Stale, reason, None);
                out.pruned.push(d);
            }
        }
    }

    // 3. Dependencies of dead tasks, transitively.
    let mut dead: Vec<(i64, String)> = by_id
        .values()
        .filter(|t| t.status.is_dead())
        .map(|t| (t.id, t.status.to_string()))
        .collect();
    // Highest id first so that the stack below reports in a stable order.
    dead.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
    dead.extend(out.superseded.iter().chain(&out.pruned).filter_map(|d| match d.target {
        Target::Task { id } => Some((id, "pruned".to_string())),
        Target::Candidate { .. } => None,
    }));
    prune_dependents(&mut items, &task_item, &dependents, dead, &mut out);

    // 4. Capacity, per template then global.
    let mut cut: Vec<(i64, String)> = Vec::new();
    let mut per_template: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        if let Some(name) = it.template {
            if input.max_open.contains_key(name) {
                per_template.entry(name).or_default().push(i);
            }
        }
    }
    for (name, members) in per_template {
        let limit = input.max_open[name];
        cut_over_capacity(&mut items, members, limit, &format!("template {name}"), &mut out, &mut cut);
    }
    if let Some(limit) = input.max_open_global {
        let all: Vec<usize> = (0..items.len()).collect();
        cut_over_capacity(&mut items, all, limit, "the queue", &mut out, &mut cut);
    }
    prune_dependents(&mut items, &task_item, &dependents, cut, &mut out);

    // Survivors, best first.
    let mut queue: Vec<usize> = (0..input.candidates.len()).filter(|&i| items[first_candidate + i].alive).collect();
    queue.sort_by(|&a, &b| out.candidate_scores[b].total.total_cmp(&out.candidate_scores[a].total).then(a.cmp(&b)));
    out.queue = queue;
    out
}

fn item_order(t: Target) -> (u8, i64) {
    match t {
        Target::Task { id } => (0, id),
        Target::Candidate { index } => (1, index as i64),
    }
}

fn decide(items: &mut [Item<'_>], idx: usize, kind: PruneKind, reason: String, by: Option<Target>) -> Decision {
    let it = &mut items[idx];
    it.alive = false;
    Decision {
        target: it.target,
        title: it.title.to_string(),
        template: it.template.map(str::to_string),
        kind,
        reason,
        superseded_by: by,
        score: it.score,
    }
}

fn cut_over_capacity(
    items: &mut [Item<'_>],
    members: Vec<usize>,
    limit: usize,
    scope: &str,
    out: &mut Plan,
    cut: &mut Vec<(i64, String)>,
) {
    let count = members.iter().filter(|&&i| items[i].alive).count();
    if count <= limit {
        return;
    }
    let mut cuttable: Vec<usize> =
        members.into_iter().filter(|&i| items[i].alive && items[i].cuttable && items[i].generated).collect();
    // Lowest score first; among equals the newest goes first (the older one has waited).
    cuttable.sort_by(|&a, &b| {
        items[a]
            .score
            .total
            .total_cmp(&items[b].score.total)
            .then(items[b].created_at.cmp(&items[a].created_at))
            .then(item_order(items[b].target).cmp(&item_order(items[a].target)))
    });
    for idx in cuttable.into_iter().take(count - limit) {
        let reason = format!(
            "{scope} holds {count} open tasks, limit {limit}; score {:.3} is among the lowest",
            items[idx].score.total
        );
        let d = decide(items, idx, PruneKind::OverCapacity, reason, None);
        if let Target::Task { id } = d.target {
            cut.push((id, "pruned (over capacity)".to_string()));
        }
        out.pruned.push(d);
    }
}

fn prune_dependents(
    items: &mut [Item<'_>],
    task_item: &HashMap<i64, usize>,
    dependents: &HashMap<i64, Vec<i64>>,
    mut frontier: Vec<(i64, String)>,
    out: &mut Plan,
) {
    let mut seen: HashSet<i64> = frontier.iter().map(|(id, _)| *id).collect();
    while let Some((dead_id, how)) = frontier.pop() {
        let Some(children) = dependents.get(&dead_id) else { continue };
        for child in children {
            let Some(&idx) = task_item.get(child) else { continue };
            if !items[idx].alive || !items[idx].cuttable {
                continue;
            }
            let reason = format!("dependency #{dead_id} is {how}");
            let d = decide(items, idx, PruneKind::DependencyFailed, reason, None);
            out.pruned.push(d);
            if seen.insert(*child) {
                frontier.push((*child, "pruned (dependency failed)".to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests;
