//! Bearer tokens for remote clients, stored as their SHA-256 only. The daemon makes and checks
//! them; this module only reads and writes rows.

use crate::{Result, Store};
use rusqlite::{params, OptionalExtension};

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub name: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// Remote clients' tokens.
pub trait TokenStore {
    /// Records a token's hash under `name`, replacing a revoked token of that name. False when a
    /// live token already has the name (nothing is changed).
    fn insert_token(&self, name: &str, hash: &str, now_ms: i64) -> Result<bool>;

    /// Revokes the live token `name`; false when there is none.
    fn revoke_token(&self, name: &str, now_ms: i64) -> Result<bool>;

    /// The token whose hash is `hash`, revoked or not.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>>;

    /// Every token, by name.
    fn tokens(&self) -> Result<Vec<TokenRow>>;
}

impl TokenStore for Store {
    fn insert_token(&self, name: &str, hash: &str, now_ms: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO tokens (name, hash, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET hash = ?2, created_ms = ?3, revoked_ms = NULL WHERE tokens.revoked_ms IS NOT NULL",
            )?
            .execute(params![name, hash, now_ms])?;
        Ok(n == 1)
    }

    fn revoke_token(&self, name: &str, now_ms: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE tokens SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms IS NULL")?
            .execute(params![name, now_ms])?;
        Ok(n == 1)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        Ok(self
            .conn
            .prepare_cached("SELECT name, created_ms, revoked_ms FROM tokens WHERE hash = ?1")?
            .query_row([hash], |r| Ok(TokenRow { name: r.get(0)?, created_ms: r.get(1)?, revoked_ms: r.get(2)? }))
            .optional()?)
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut st = self.conn.prepare_cached("SELECT name, created_ms, revoked_ms FROM tokens ORDER BY name")?;
        let rows = st.query_map([], |r| Ok(TokenRow { name: r.get(0)?, created_ms: r.get(1)?, revoked_ms: r.get(2)? }))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_live_token_and_a_revoked_one_can_be_replaced() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.insert_token("ci", "h1", 1).unwrap());
        assert!(!s.insert_token("ci", "h2", 2).unwrap(), "a live token keeps its name");
        assert_eq!(s.token_by_hash("h1").unwrap().unwrap().revoked_ms, None);
        assert!(s.token_by_hash("h2").unwrap().is_none());
        assert!(s.revoke_token("ci", 3).unwrap());
        assert!(!s.revoke_token("ci", 4).unwrap());
        assert_eq!(s.token_by_hash("h1").unwrap().unwrap().revoked_ms, Some(3));
        assert!(s.insert_token("ci", "h3", 5).unwrap());
        assert!(s.token_by_hash("h1").unwrap().is_none());
        assert_eq!(s.tokens().unwrap().len(), 1);
    }
}
