//! A batch's writes, held until they must be on the server, then sent as few statements as
//! their order allows.
//!
//! Measured on two cores: with every write its own statement, the server took about 20 µs a
//! statement, one after another, and a batch of 20 task operations (some 80 statements) kept the
//! daemon waiting 1.6 ms for its COMMIT. The hot writes (new tasks, status changes, history rows,
//! events) are therefore sent one statement per kind and group, each row an element of an array
//! parameter (`unnest`), and the rest one statement each, in the order they were made.
//!
//! The order of a group: new tasks first (everything else may refer to them), then the other
//! writes as they came (task files and dependencies, locks, sessions, ...), then the status
//! changes, the history rows, the counters and the events. No write of the second part reads a
//! status, a history row, a counter or an event, so none of them depends on being before it.

use crate::{own, Owned};
use kite_core::TaskStatus;
use tokio_postgres::Statement;

/// One write, not yet sent.
pub(crate) enum Write {
    /// Any statement, sent as it is.
    Plain { st: Statement, params: Vec<Owned> },
    NewTask(NewTask),
    /// A status change conditional on the row being as the daemon remembers it.
    Change(Change),
    History(History),
    Event(Event),
    /// A counter's new value.
    Counter(String, i64),
}

pub(crate) struct NewTask {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) priority: i64,
    pub(crate) dedup_key: Option<String>,
    pub(crate) stale_after_secs: Option<i64>,
    pub(crate) workstream: Option<String>,
    pub(crate) template: Option<String>,
    pub(crate) at_ms: i64,
}

pub(crate) struct Change {
    pub(crate) id: i64,
    pub(crate) status: TaskStatus,
    pub(crate) claim_session: Option<String>,
    pub(crate) claim_token: Option<i64>,
    pub(crate) attempts: i64,
    pub(crate) result: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) at_ms: i64,
    /// What the row must still say.
    pub(crate) was_status: TaskStatus,
    pub(crate) was_token: Option<i64>,
}

pub(crate) struct History {
    pub(crate) task: i64,
    pub(crate) at_ms: i64,
    pub(crate) from: Option<TaskStatus>,
    pub(crate) to: TaskStatus,
    pub(crate) session: Option<String>,
    pub(crate) note: Option<String>,
}

pub(crate) struct Event {
    pub(crate) id: i64,
    pub(crate) at_ms: i64,
    pub(crate) kind: String,
    pub(crate) data: String,
}

/// A statement to send: prepared already, or its text and parameters.
pub(crate) enum Out {
    Prepared(Statement, Vec<Owned>),
    Text(&'static str, Vec<Owned>),
}

const NEW_TASKS: &str = "INSERT INTO tasks (id, title, body, status, priority, dedup_key, stale_after_secs, workstream, template,
                                   created_at_ms, updated_at_ms)
    SELECT id, title, body, 'pending', priority, dedup_key, stale, workstream, template, at, at
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::bigint[])
         AS v(id, title, body, priority, dedup_key, stale, workstream, template, at)";

/// Through a function (migration 0003): each row by its primary key, so the plan stays an index
/// look-up as the table grows (a join with the batch's rows, planned while `tasks` was small,
/// turned into a sequential scan: measured, the throughput fell by a third within three seconds).
const CHANGES: &str = "SELECT kite_change_tasks($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[],
                                          $7::text[], $8::bigint[], $9::text[], $10::bigint[])";

const HISTORY: &str = "INSERT INTO task_history (task, at_ms, from_st, to_st, session, note)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])";

const COUNTERS: &str = "INSERT INTO counters (name, value) SELECT * FROM unnest($1::text[], $2::bigint[])
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";

const EVENTS: &str = "INSERT INTO events (id, at_ms, kind, data) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[])";

/// The statements that write `writes`, in an order that keeps their meaning (see the module's
/// docs).
pub(crate) fn coalesce(writes: Vec<Write>) -> Vec<Out> {
    let (mut new, mut plain, mut changes, mut history, mut events) = (Vec::new(), Vec::new(), Vec::<Change>::new(), Vec::new(), Vec::new());
    let mut counters: Vec<(String, i64)> = Vec::new();
    for w in writes {
        match w {
            Write::Plain { st, params } => plain.push(Out::Prepared(st, params)),
            Write::NewTask(t) => new.push(t),
            Write::Change(c) => match changes.iter_mut().find(|x| x.id == c.id) {
                // Two changes of one task: one update from what the first expected to what
                // the last set.
                Some(first) => *first = Change { was_status: first.was_status, was_token: first.was_token, ..c },
                None => changes.push(c),
            },
            Write::History(h) => history.push(h),
            Write::Event(e) => events.push(e),
            // The last value of each counter (one row may be changed once per statement).
            Write::Counter(name, value) => match counters.iter_mut().find(|(n, _)| *n == name) {
                Some(c) => c.1 = value,
                None => counters.push((name, value)),
            },
        }
    }
    let mut out = Vec::new();
    if !new.is_empty() {
        out.push(Out::Text(
            NEW_TASKS,
            vec![
                col(&new, |t| t.id),
                col(&new, |t| t.title.clone()),
                col(&new, |t| t.body.clone()),
                col(&new, |t| t.priority),
                col(&new, |t| t.dedup_key.clone()),
                col(&new, |t| t.stale_after_secs),
                col(&new, |t| t.workstream.clone()),
                col(&new, |t| t.template.clone()),
                col(&new, |t| t.at_ms),
            ],
        ));
    }
    out.extend(plain);
    if !changes.is_empty() {
        out.push(Out::Text(
            CHANGES,
            vec![
                col(&changes, |c| c.id),
                col(&changes, |c| c.status.as_str().to_string()),
                col(&changes, |c| c.claim_session.clone()),
                col(&changes, |c| c.claim_token),
                col(&changes, |c| c.attempts),
                col(&changes, |c| c.result.clone()),
                col(&changes, |c| c.reason.clone()),
                col(&changes, |c| c.at_ms),
                col(&changes, |c| c.was_status.as_str().to_string()),
                col(&changes, |c| c.was_token),
            ],
        ));
    }
    if !history.is_empty() {
        out.push(Out::Text(
            HISTORY,
            vec![
                col(&history, |h| h.task),
                col(&history, |h| h.at_ms),
                col(&history, |h| h.from.map(|s| s.as_str().to_string())),
                col(&history, |h| h.to.as_str().to_string()),
                col(&history, |h| h.session.clone()),
                col(&history, |h| h.note.clone()),
            ],
        ));
    }
    if !counters.is_empty() {
        out.push(Out::Text(COUNTERS, vec![col(&counters, |c| c.0.clone()), col(&counters, |c| c.1)]));
    }
    if !events.is_empty() {
        out.push(Out::Text(
            EVENTS,
            vec![col(&events, |e| e.id), col(&events, |e| e.at_ms), col(&events, |e| e.kind.clone()), col(&events, |e| e.data.clone())],
        ));
    }
    out
}

/// One column of rows, as an array parameter.
fn col<R, T>(rows: &[R], f: impl Fn(&R) -> T) -> Owned
where
    Vec<T>: tokio_postgres::types::ToSql + Sync + Send + 'static,
{
    own(rows.iter().map(f).collect::<Vec<T>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: i64, was: TaskStatus, to: TaskStatus) -> Write {
        Write::Change(Change {
            id,
            status: to,
            claim_session: None,
            claim_token: Some(id),
            attempts: 1,
            result: None,
            reason: None,
            at_ms: 0,
            was_status: was,
            was_token: None,
        })
    }

    fn texts(outs: &[Out]) -> Vec<&'static str> {
        outs.iter().map(|o| match o {
            Out::Text(t, _) => *t,
            Out::Prepared(..) => "plain",
        })
        .collect()
    }

    #[test]
    fn each_kind_is_one_statement_new_tasks_first_and_two_changes_of_a_task_one() {
        let h = |task| Write::History(History { task, at_ms: 0, from: None, to: TaskStatus::Pending, session: None, note: None });
        let e = |id| Write::Event(Event { id, at_ms: 0, kind: "k".into(), data: "{}".into() });
        let n = |id| {
            Write::NewTask(NewTask { id, title: "t".into(), body: String::new(), priority: 0, dedup_key: None, stale_after_secs: None, workstream: None, template: None, at_ms: 0 })
        };
        let writes = vec![
            e(1),
            h(1),
            change(1, TaskStatus::Pending, TaskStatus::Active),
            n(2),
            h(2),
            change(1, TaskStatus::Active, TaskStatus::Done),
            e(2),
            Write::Counter("claim_seq".into(), 1),
            Write::Counter("claim_seq".into(), 2),
        ];
        let outs = coalesce(writes);
        assert_eq!(texts(&outs), vec![NEW_TASKS, CHANGES, HISTORY, COUNTERS, EVENTS]);
        let Out::Text(_, counters) = &outs[3] else { unreachable!() };
        assert_eq!(format!("{:?} {:?}", counters[0], counters[1]), "[\"claim_seq\"] [2]", "a counter's last value, once");
        let Out::Text(_, params) = &outs[1] else { unreachable!() };
        // One row for task 1: from pending (what the first change expected) to done (the last).
        assert_eq!(format!("{:?}", params[0]), "[1]");
        assert_eq!(format!("{:?}", params[1]), "[\"done\"]");
        assert_eq!(format!("{:?}", params[8]), "[\"pending\"]");
    }
}
