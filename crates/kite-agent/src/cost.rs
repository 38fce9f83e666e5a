//! What an agent cost: tokens by kind, dollars, and the price table that turns one into the other.
//!
//! Claude Code reports `total_cost_usd` only when a print-mode run ends, and a transcript (a
//! person's session, or a run still going) carries tokens, not dollars. So kite keeps a price
//! table per model: input, output, cache writes (5-minute and 1-hour) and cache reads, in dollars
//! per million tokens. The table ships in the binary (`prices.toml`, beside this file) and
//! `[prices."MODEL"]` in kite.toml overrides or adds a model. A model the table does not know is
//! priced at nothing and said so, never guessed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Tokens of one run (or one response), by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cache writes, all durations (the 5-minute and 1-hour ones are priced apart when a
    /// transcript says which; see [`Usage::cache_creation_1h`]).
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// Of the cache writes, those held for an hour (priced higher).
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_creation_1h: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Adds another's tokens (saturating: a transcript's numbers are not trusted).
    pub fn add(&mut self, o: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .saturating_add(o.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .saturating_add(o.cache_read_input_tokens);
        self.cache_creation_1h = self.cache_creation_1h.saturating_add(o.cache_creation_1h);
    }

    /// Every token, of every kind.
    pub fn total(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_creation_input_tokens)
            .saturating_add(self.cache_read_input_tokens)
    }

    /// Reads Anthropic's `usage` object (as in a response, a result JSON or a transcript line).
    pub fn from_api(v: &serde_json::Value) -> Usage {
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let one_hour = v
            .pointer("/cache_creation/ephemeral_1h_input_tokens")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Usage {
            input_tokens: n("input_tokens"),
            output_tokens: n("output_tokens"),
            cache_creation_input_tokens: n("cache_creation_input_tokens"),
            cache_read_input_tokens: n("cache_read_input_tokens"),
            cache_creation_1h: one_hour,
        }
    }
}

/// Dollars per million tokens for one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Cache writes held 5 minutes.
    pub cache_write_5m: f64,
    /// Cache writes held an hour.
    pub cache_write_1h: f64,
    pub cache_read: f64,
}

/// The models kite can price, by id. A dated id (`claude-sonnet-4-5-20250929`) is priced as its
/// family (`claude-sonnet-4-5`) when only the family is listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceTable(pub BTreeMap<String, Price>);

/// The table shipped in the binary.
const SHIPPED: &str = include_str!("prices.toml");

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable(
            toml::from_str(SHIPPED).expect("the shipped price table parses (a unit test pins it)"),
        )
    }
}

impl PriceTable {
    /// The shipped table with kite.toml's `[prices]` laid over it.
    pub fn with_overrides(overrides: &BTreeMap<String, Price>) -> PriceTable {
        let mut t = PriceTable::default();
        t.0.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        t
    }

    /// The price of a model id, by exact id, then by its family (a trailing `-YYYYMMDD` or
    /// `[1m]`-style suffix dropped).
    pub fn price(&self, model: &str) -> Option<&Price> {
        if let Some(p) = self.0.get(model) {
            return Some(p);
        }
        let base = model.split('[').next().unwrap_or(model);
        let family = match base.rsplit_once('-') {
            Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => {
                head
            }
            _ => base,
        };
        self.0.get(family)
    }

    /// Dollars for `usage` on `model`; `None` when the model is not in the table.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        let p = self.price(model)?;
        let m = 1_000_000.0;
        let write_5m = usage
            .cache_creation_input_tokens
            .saturating_sub(usage.cache_creation_1h);
        Some(
            usage.input_tokens as f64 * p.input / m
                + usage.output_tokens as f64 * p.output / m
                + write_5m as f64 * p.cache_write_5m / m
                + usage.cache_creation_1h as f64 * p.cache_write_1h / m
                + usage.cache_read_input_tokens as f64 * p.cache_read / m,
        )
    }
}

/// What one run (an attempt, or a person's session) cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub usd: f64,
    #[serde(flatten)]
    pub usage: Usage,
    /// The model that did most of the work (by output tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub turns: u64,
    #[serde(default)]
    pub duration_ms: u64,
    /// Claude Code's own session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_session: Option<String>,
    /// Models the price table does not know (their tokens are counted, their dollars are not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
}

impl Cost {
    /// Adds another run's cost: dollars, tokens, turns and time summed; the model and the
    /// session are the latest known; unpriced models together.
    pub fn add(&mut self, o: &Cost) {
        self.usd += o.usd;
        self.usage.add(&o.usage);
        self.turns = self.turns.saturating_add(o.turns);
        self.duration_ms = self.duration_ms.saturating_add(o.duration_ms);
        if o.model.is_some() {
            self.model.clone_from(&o.model);
        }
        if o.agent_session.is_some() {
            self.agent_session.clone_from(&o.agent_session);
        }
        for m in &o.unpriced {
            if !self.unpriced.contains(m) {
                self.unpriced.push(m.clone());
            }
        }
    }
}

/// The usage a transcript records, per model. Claude Code writes several lines per response
/// (one per content block), each with the response's usage so far: each message id plus request
/// id counts once, with its largest usage.
pub fn transcript_usage(path: &Path) -> std::io::Result<BTreeMap<String, Usage>> {
    let text = std::fs::read_to_string(path)?;
    let mut seen: HashMap<(String, String), (String, Usage)> = HashMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(msg) = v.get("message") else {
            continue;
        };
        let Some(usage) = msg.get("usage") else {
            continue;
        };
        let id = msg
            .get("id")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string();
        let req = v
            .get("requestId")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string();
        if id.is_empty() && req.is_empty() {
            continue;
        }
        let model = msg
            .get("model")
            .and_then(|x| x.as_str())
            .unwrap_or("unknown")
            .to_string();
        let u = Usage::from_api(usage);
        let e = seen
            .entry((id, req))
            .or_insert_with(|| (model.clone(), Usage::default()));
        if u.total() >= e.1.total() {
            *e = (model, u);
        }
    }
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    for (model, u) in seen.into_values() {
        // Claude Code's own placeholder for a message it made up (an interrupted turn).
        if model == "<synthetic>" {
            continue;
        }
        out.entry(model).or_default().add(&u);
    }
    Ok(out)
}

/// Prices usage by model (a transcript's, or a result's `modelUsage`): the dollars of every
/// model the table knows, the tokens of all, the model that did most of the work (by output).
pub fn price_by_model(prices: &PriceTable, by_model: &BTreeMap<String, Usage>) -> Cost {
    let mut c = Cost::default();
    let mut best = (0u64, None::<String>);
    for (model, u) in by_model {
        c.usage.add(u);
        match prices.cost(model, u) {
            Some(usd) => c.usd += usd,
            None => c.unpriced.push(model.clone()),
        }
        if u.output_tokens >= best.0 {
            best = (u.output_tokens, Some(model.clone()));
        }
    }
    c.model = best.1;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses_and_prices_dated_ids_by_family() {
        let t = PriceTable::default();
        assert!(t.0.len() >= 5, "{:?}", t.0.keys());
        let p = t
            .price("claude-sonnet-4-5-20250929")
            .expect("a dated id is priced as its family");
        assert_eq!(p.input, 3.0);
        assert!(t.price("gpt-4").is_none());
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..Default::default()
        };
        assert_eq!(t.cost("claude-sonnet-4-5", &u), Some(18.0));
    }

    #[test]
    fn cache_writes_are_priced_by_duration() {
        let t = PriceTable::default();
        let u = Usage {
            cache_creation_input_tokens: 2_000_000,
            cache_creation_1h: 1_000_000,
            cache_read_input_tokens: 1_000_000,
            ..Default::default()
        };
        // Sonnet: 3.75 per million written for 5 minutes, 6 for an hour, 0.30 read.
        let usd = t.cost("claude-sonnet-4-5", &u).unwrap();
        assert!((usd - (3.75 + 6.0 + 0.30)).abs() < 1e-9, "{usd}");
    }

    #[test]
    fn overrides_replace_and_add_models() {
        let mut o = BTreeMap::new();
        o.insert(
            "my-model".to_string(),
            Price {
                input: 1.0,
                output: 2.0,
                cache_write_5m: 0.0,
                cache_write_1h: 0.0,
                cache_read: 0.0,
            },
        );
        let t = PriceTable::with_overrides(&o);
        assert!(t.price("my-model").is_some());
        assert!(t.price("claude-sonnet-4-5").is_some());
    }

    #[test]
    fn a_transcript_counts_each_response_once_with_its_largest_usage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let line = |id: &str, req: &str, out: u64| {
            serde_json::json!({"type": "assistant", "requestId": req, "message": {"id": id, "model": "claude-sonnet-4-5", "usage": {"input_tokens": 100, "output_tokens": out, "cache_read_input_tokens": 10}}}).to_string()
        };
        let text = [
            line("m1", "r1", 5),
            line("m1", "r1", 40),
            line("m2", "r2", 7),
            "not json".into(),
            r#"{"type":"user","message":{"content":"hi"}}"#.into(),
        ]
        .join("\n");
        std::fs::write(&p, text).unwrap();
        let by = transcript_usage(&p).unwrap();
        let u = by["claude-sonnet-4-5"];
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cache_read_input_tokens),
            (200, 47, 20)
        );
        let c = price_by_model(&PriceTable::default(), &by);
        assert!(c.usd > 0.0 && c.unpriced.is_empty());
    }
}
