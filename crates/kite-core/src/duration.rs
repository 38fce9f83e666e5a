//! Human durations as people write them in flags, template front matter and `kite.toml`: `250ms`,
//! `90s`, `30m`, `2h`, `7d`, `1w`, compounds like `1h30m`, or a bare number of seconds.
//!
//! This is the one parser in the workspace, so a duration that works in `--stale-after` also works
//! in a template or in config, and the error always shows the same examples. Serialization writes
//! the largest exact unit back, so a value read and written again stays readable by people.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// A duration string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration {input:?}: {why} (expected e.g. \"250ms\", \"90s\", \"30m\", \"2h\", \"7d\", \"1h30m\")")]
pub struct DurationError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses a bare non-negative integer (seconds) or one or more `<integer><unit>` segments that add
/// up (`1h30m`, `1s500ms`), with unit one of ms, s/sec/secs, m/min/mins, h/hr/hrs, d/day/days,
/// w/week/weeks. Whitespace is allowed around the whole input and between a number and its unit
/// (`5 min`), nowhere else.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError { input: input.to_string(), why };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| err("too large"))?;
        return secs.checked_mul(1_000).map(Duration::from_millis).ok_or_else(|| err("too large"));
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(err(match rest.as_bytes()[0] {
                b'-' => "negative",
                b' ' | b'\t' => "space between segments",
                _ => "no number before the unit",
            }));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err("too large"))?;
        let after = rest[digits..].trim_start();
        let letters = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
        let (unit, next) = after.split_at(letters);
        let ms_per: u64 = match unit {
            "" if next.starts_with(['.', ',']) => return Err(err("fractions are not allowed; use a smaller unit")),
            "" => return Err(err("number without a unit")),
            "ms" => 1,
            "s" | "sec" | "secs" => 1_000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 7 * 86_400_000,
            _ => return Err(err("unknown unit")),
        };
        let ms = n.checked_mul(ms_per).ok_or_else(|| err("too large"))?;
        total_ms = total_ms.checked_add(ms).ok_or_else(|| err("too large"))?;
        rest = next;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Whole seconds for places that store seconds, rounded up so that a sub-second remainder never
/// makes a limit shorter than what was asked for (`1s500ms` is 2, `250ms` is 1).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// Writes a duration in the largest unit that represents it exactly.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".to_string();
    }
    for (unit, per) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// serde helpers: `#[serde(with = "kite_core::duration::serde_human")]`. Reads a duration string
/// or a bare integer (seconds); writes a string.
pub mod serde_human {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
            Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// serde helpers for `Option<Duration>`.
pub mod serde_human_opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::serde_human")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(input: &str) -> Option<u64> {
        parse_duration(input).ok().map(|d| d.as_millis() as u64)
    }

    #[test]
    fn parses_single_units() {
        for (s, want) in [
            ("0", 0),
            ("90", 90_000),
            ("250ms", 250),
            ("90s", 90_000),
            ("30m", 1_800_000),
            ("2h", 7_200_000),
            ("7d", 604_800_000),
            ("1w", 604_800_000),
            (" 1w ", 604_800_000),
            ("5 min", 300_000),
            ("3 hrs", 10_800_000),
            ("2days", 172_800_000),
            ("2 weeks", 1_209_600_000),
            ("10secs", 10_000),
        ] {
            assert_eq!(ms(s), Some(want), "{s}");
        }
    }

    #[test]
    fn parses_compounds() {
        for (s, want) in [
            ("1h30m", 5_400_000),
            ("2m30s", 150_000),
            ("1s500ms", 1_500),
            ("1d12h", 129_600_000),
            ("1w2d3h4m5s6ms", 788_645_006),
            ("1min30s", 90_000),
            ("2 h30 m", 9_000_000),
        ] {
            assert_eq!(ms(s), Some(want), "{s}");
        }
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for (s, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("h", "no number before the unit"),
            ("3x", "unknown unit"),
            ("5 x", "unknown unit"),
            ("3h5", "number without a unit"),
            ("1h30", "number without a unit"),
            ("-3s", "negative"),
            ("-1", "negative"),
            ("1.5h", "fractions are not allowed; use a smaller unit"),
            ("1h 30m", "space between segments"),
            ("1h-30m", "negative"),
            ("1h_30m", "no number before the unit"),
            ("99999999999999999999d", "too large"),
            ("99999999999999999999", "too large"),
            ("18446744073709551615", "too large"),
            ("300000000000000w", "too large"),
            ("18446744073709551615ms1ms", "too large"),
        ] {
            assert_eq!(parse_duration(s).map_err(|e| e.why), Err(why), "{s:?}");
        }
    }

    #[test]
    fn error_names_the_input_and_shows_examples() {
        let msg = parse_duration("5 soon").unwrap_err().to_string();
        assert!(msg.contains("\"5 soon\"") && msg.contains("unknown unit"), "{msg}");
        assert!(msg.contains("250ms") && msg.contains("1h30m"), "{msg}");
    }

    #[test]
    fn formats_back() {
        for s in ["250ms", "90s", "30m", "2h", "7d"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(format_duration(parse_duration("1h30m").unwrap()), "90m");
        assert_eq!(format_duration(parse_duration("1s500ms").unwrap()), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn rounds_seconds_up() {
        assert_eq!(ceil_secs(Duration::from_secs(7200)), 7200);
        assert_eq!(ceil_secs(Duration::from_millis(1_500)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(250)), 1);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }

    #[test]
    fn serde_reads_strings_and_bare_seconds() {
        use serde::de::value::{Error, StrDeserializer, U64Deserializer};
        use serde::de::IntoDeserializer;
        let text: StrDeserializer<'_, Error> = "1h30m".into_deserializer();
        assert_eq!(serde_human::deserialize(text), Ok(Duration::from_secs(5400)));
        let secs: U64Deserializer<Error> = 90u64.into_deserializer();
        assert_eq!(serde_human::deserialize(secs), Ok(Duration::from_secs(90)));
        let bad: StrDeserializer<'_, Error> = "3h5".into_deserializer();
        let e = serde_human::deserialize(bad).unwrap_err().to_string();
        assert!(e.contains("number without a unit"), "{e}");
    }
}
