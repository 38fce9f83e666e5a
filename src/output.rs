//! Printing: `--json` prints exactly one JSON document; otherwise a short human form.

use anyhow::Result;
use serde::Serialize;
use std::io::Write;

pub(crate) fn json<T: Serialize>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub(crate) fn line(s: impl std::fmt::Display) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")?;
    Ok(())
}

/// Dollars as the cost lines print them.
pub(crate) fn usd(x: f64) -> String {
    format!("${x:.4}")
}

/// Tokens by kind, short: `in 1200 out 340 cache 5000w/80000r`.
pub(crate) fn tokens(input: u64, output: u64, cache_write: u64, cache_read: u64) -> String {
    format!("in {input} out {output} cache {cache_write}w/{cache_read}r")
}

/// Milliseconds since the epoch as a UTC timestamp, for human output.
pub(crate) fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant), to avoid a date dependency for one format.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::when(0), "1970-01-01 00:00:00");
        assert_eq!(super::when(1_795_000_000_000), "2026-11-18 11:06:40");
    }

    #[test]
    fn formats_costs() {
        assert_eq!(super::usd(0.123_456), "$0.1235");
        assert_eq!(super::tokens(1, 2, 3, 4), "in 1 out 2 cache 3w/4r");
    }
}
