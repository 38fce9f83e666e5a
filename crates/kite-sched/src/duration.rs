//! Human durations ("90s", "30m", "2h", "7d", "250ms") for template front matter and config.
//!
//! Templates and `kite.toml` are written by people, so durations are strings with a unit; config also
//! accepts a bare integer as seconds. Serialization writes the shortest exact unit back.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// A duration string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration {input:?}: {why} (expected e.g. \"250ms\", \"90s\", \"30m\", \"2h\", \"7d\")")]
pub struct DurationError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses `<integer><unit>` with unit one of ms, s, m, h, d, w; a bare integer means seconds.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    let err = |why| DurationError { input: input.to_string(), why };
    if s.is_empty() {
        return Err(err("empty"));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(err("no number"));
    }
    let n: u64 = num.parse().map_err(|_| err("number too large"))?;
    let ms_per: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" | "sec" | "secs" => 1_000,
        "m" | "min" | "mins" => 60_000,
        "h" | "hr" | "hrs" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 7 * 86_400_000,
        _ => return Err(err("unknown unit")),
    };
    let ms = n.checked_mul(ms_per).ok_or_else(|| err("number too large"))?;
    Ok(Duration::from_millis(ms))
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

/// serde helpers: `#[serde(with = "crate::duration::serde_human")]`.
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

    fn check(input: &str, expected: Option<u64>) {
        assert_eq!(parse_duration(input).ok().map(|d| d.as_millis() as u64), expected, "{input}");
    }

    #[test]
    fn parses_units() {
        check("250ms", Some(250));
        check("90s", Some(90_000));
        check("90", Some(90_000));
        check("30m", Some(1_800_000));
        check("2h", Some(7_200_000));
        check("7d", Some(604_800_000));
        check(" 1w ", Some(604_800_000));
        check("", None);
        check("h", None);
        check("3x", None);
        check("-3s", None);
        check("99999999999999999999d", None);
    }

    #[test]
    fn formats_back() {
        for s in ["250ms", "90s", "30m", "2h", "7d"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
