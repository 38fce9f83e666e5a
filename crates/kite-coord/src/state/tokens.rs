//! `token.*` and the connections' `auth`: tokens are made and revoked on the local socket only
//! (the connection refuses them over the network), and checked against the store.

use super::{Handled, State};
use kite_proto::ops::{TokenCreated, TokenInfo, TokenName, Tokens};
use kite_proto::Refusal;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Token names revoked while this daemon runs. Connections already authenticated with one check
/// it before each request (their token was good when they connected).
#[derive(Debug, Clone, Default)]
pub(crate) struct Revoked(Arc<Mutex<HashSet<String>>>);

impl Revoked {
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(name)
    }

    fn insert(&self, name: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string());
    }

    fn remove(&self, name: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

impl State {
    /// The name of the live token whose hash is `hash`.
    pub(super) fn authenticate(&self, hash: &str) -> Result<String, Refusal> {
        match self.store.token_by_hash(hash).map_err(Refusal::internal)? {
            None => Err(Refusal::BadToken),
            Some(t) if t.revoked_ms.is_some() => Err(Refusal::TokenRevoked(t.name)),
            Some(t) => Ok(t.name),
        }
    }

    pub(super) fn token_create(&mut self, a: TokenName) -> Handled<TokenCreated> {
        if !crate::tokens::valid_name(&a.name) {
            return Err(Refusal::BadTokenName.into());
        }
        let token = crate::tokens::generate();
        if !self.store.insert_token(&a.name, &crate::tokens::hash(&token), self.now_ms).map_err(super::internal)? {
            return Err(Refusal::TokenExists(a.name).into());
        }
        self.revoked.remove(&a.name);
        tracing::info!(name = %a.name, "token created");
        Ok(TokenCreated { name: a.name, token })
    }

    pub(super) fn token_revoke(&mut self, a: TokenName) -> Handled<serde_json::Value> {
        if !self.store.revoke_token(&a.name, self.now_ms).map_err(super::internal)? {
            return Err(Refusal::NoToken(a.name).into());
        }
        self.revoked.insert(&a.name);
        tracing::info!(name = %a.name, "token revoked");
        Ok(serde_json::json!({ "revoked": a.name }))
    }

    pub(super) fn token_list(&mut self) -> Handled<Tokens> {
        let tokens = self.store.tokens().map_err(super::internal)?;
        Ok(Tokens { tokens: tokens.into_iter().map(|t| TokenInfo { name: t.name, created_ms: t.created_ms, revoked_ms: t.revoked_ms }).collect() })
    }
}
