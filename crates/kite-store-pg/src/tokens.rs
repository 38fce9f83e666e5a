//! Remote clients' tokens on PostgreSQL (the SQLite backend's, shared by the team's daemons).

use crate::{PgStore, Result};
use kite_store::{TokenRow, TokenStore};
use tokio_postgres::Row;

fn row(r: &Row) -> TokenRow {
    TokenRow { name: r.get(0), created_ms: r.get(1), revoked_ms: r.get(2) }
}

impl TokenStore for PgStore {
    fn insert_token(&self, name: &str, hash: &str, now_ms: i64) -> Result<bool> {
        let n = self.exec(
            "INSERT INTO tokens (name, hash, created_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_ms = excluded.created_ms, revoked_ms = NULL
             WHERE tokens.revoked_ms IS NOT NULL",
            &[&name, &hash, &now_ms],
        )?;
        Ok(n == 1)
    }

    fn revoke_token(&self, name: &str, now_ms: i64) -> Result<bool> {
        Ok(self.exec("UPDATE tokens SET revoked_ms = $2 WHERE name = $1 AND revoked_ms IS NULL", &[&name, &now_ms])? == 1)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        Ok(self.opt("SELECT name, created_ms, revoked_ms FROM tokens WHERE hash = $1", &[&hash])?.as_ref().map(row))
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        Ok(self.query("SELECT name, created_ms, revoked_ms FROM tokens ORDER BY name", &[])?.iter().map(row).collect())
    }
}
