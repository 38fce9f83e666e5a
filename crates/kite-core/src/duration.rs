//! Human durations as people write them in flags and templates: `90s`, `30m`, `2h`, `7d`, `1w`,
//! combinations like `1h30m`, or a bare number of seconds.

/// Parses a duration into seconds, with an error that shows the accepted forms.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("invalid duration '{s}' (examples: 90s, 30m, 2h, 7d, 1h30m)");
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = total.checked_add(n.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn parses_the_usual_forms() {
        for (s, want) in [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604_800), ("1h30m", 5400), ("1w", 604_800)] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for s in ["", "h", "5x", "1.5h", "3h5", "-1s"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
