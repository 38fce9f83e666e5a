//! When each template runs: a cron expression, a fixed interval, or every tick.
//!
//! The cron crate wants seconds-first expressions (6 or 7 fields) and numbers Sunday as 1; people
//! write 5-field crontab lines with Sunday as 0 or 7. [`Cadence::parse`] accepts both, plus the
//! `@hourly`-style names and `@every 10m`, and rejects anything else with an error that says what
//! it expected.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration::{format_duration, parse_duration};

/// A schedule expression that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad schedule {expr:?}: {why}")]
pub struct ScheduleError {
    pub expr: String,
    pub why: String,
}

/// How often a template runs.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// On every tick of the loop (no `schedule` in the front matter).
    EveryTick,
    /// `@every 10m`: at most once per interval.
    Every(Duration),
    Cron(Box<cron::Schedule>),
}

impl Cadence {
    pub fn parse(expr: &str) -> Result<Cadence, ScheduleError> {
        let e = expr.trim();
        let err = |why: String| ScheduleError { expr: expr.to_string(), why };
        if e.is_empty() {
            return Err(err("empty".into()));
        }
        if let Some(rest) = e.strip_prefix("@every") {
            let d = parse_duration(rest).map_err(|x| err(x.to_string()))?;
            if d.is_zero() {
                return Err(err("interval must be positive".into()));
            }
            return Ok(Cadence::Every(d));
        }
        let fields: Vec<&str> = e.split_whitespace().collect();
        let six = match fields.len() {
            1 if e.starts_with('@') => e.to_string(),
            5 => {
                let dow = crontab_dow(fields[4]).map_err(err)?;
                format!("0 {} {} {} {} {}", fields[0], fields[1], fields[2], fields[3], dow)
            }
            6 | 7 => e.to_string(),
            n => {
                return Err(err(format!(
                    "{n} fields; expected 5 (minute hour day-of-month month day-of-week), 6 or 7 \
                     (seconds first, year last), @hourly/@daily/@weekly/@monthly/@yearly, or @every 10m"
                )))
            }
        };
        cron::Schedule::from_str(&six).map(|s| Cadence::Cron(Box::new(s))).map_err(|x| err(x.to_string()))
    }

    /// The first time strictly after `t` this cadence fires.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::EveryTick => Some(t),
            Cadence::Every(d) => chrono::Duration::from_std(*d).ok().and_then(|d| t.checked_add_signed(d)),
            Cadence::Cron(s) => s.after(&t).next(),
        }
    }

    /// For listings: the expression as the cron crate or the interval sees it.
    pub fn describe(&self) -> String {
        match self {
            Cadence::EveryTick => "every tick".to_string(),
            Cadence::Every(d) => format!("@every {}", format_duration(*d)),
            Cadence::Cron(s) => s.source().to_string(),
        }
    }
}

/// Translates a crontab day-of-week field (0-7, Sunday 0 or 7) to the cron crate's (1-7, Sunday 1).
/// Names (mon, tue, ...) and `*`/`?` pass through.
fn crontab_dow(field: &str) -> Result<String, String> {
    let map = |n: &str| -> Result<u32, String> {
        let v: u32 = n.parse().map_err(|_| format!("bad day of week {n:?}"))?;
        if v > 7 {
            return Err(format!("day of week {v} out of range 0-7"));
        }
        Ok(v % 7 + 1)
    };
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let step = step.map(|s| format!("/{s}")).unwrap_or_default();
        match range.split_once('-') {
            Some((a, b)) if is_num(a) && is_num(b) => {
                let (a, b_raw) = (map(a)?, b.parse::<u32>().map_err(|_| format!("bad day of week {b:?}"))?);
                if b_raw == 7 && a != 1 {
                    // x-7 ends on Sunday, which the cron crate numbers 1: split the wrap.
                    parts.push(format!("{a}-7{step}"));
                    parts.push("1".to_string());
                } else {
                    parts.push(format!("{a}-{}{step}", map(b)?));
                }
            }
            _ if is_num(range) => parts.push(format!("{}{step}", map(range)?)),
            _ => parts.push(item.to_string()),
        }
    }
    Ok(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn next(expr: &str, from: DateTime<Utc>) -> DateTime<Utc> {
        Cadence::parse(expr).unwrap().next_after(from).unwrap()
    }

    #[test]
    fn five_field_crontab() {
        // 2026-11-25 is a Wednesday.
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 10, 7, 30).unwrap();
        assert_eq!(next("*/10 * * * *", t), Utc.with_ymd_and_hms(2026, 11, 25, 10, 10, 0).unwrap());
        assert_eq!(next("0 9 * * *", t), Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap());
        // Sunday as 0 and as 7.
        assert_eq!(next("0 9 * * 0", t), Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap());
        assert_eq!(next("0 9 * * 7", t), Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap());
        // Monday to Friday.
        assert_eq!(next("0 9 * * 1-5", t), Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap());
        // Saturday to Sunday.
        assert_eq!(next("0 9 * * 6-7", t), Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap());
        assert_eq!(next("0 9 * * mon", t), Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap());
    }

    #[test]
    fn seconds_first_names_and_intervals() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 10, 7, 30).unwrap();
        assert_eq!(next("15 * * * * *", t), Utc.with_ymd_and_hms(2026, 11, 25, 10, 8, 15).unwrap());
        assert_eq!(next("@hourly", t), Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap());
        assert_eq!(next("@every 10m", t), t + chrono::Duration::minutes(10));
    }

    #[test]
    fn bad_expressions_say_why() {
        for bad in ["", "* * *", "61 * * * *", "* * * * 9", "@every", "@every 0s", "@sometimes", "a b c d e"] {
            let e = Cadence::parse(bad).unwrap_err();
            assert!(e.to_string().starts_with("bad schedule"), "{bad}: {e}");
        }
        assert!(Cadence::parse("* * *").unwrap_err().why.contains("expected 5"));
    }
}
