//! Bearer tokens for remote clients: how one is made, and the only form kept of it (SHA-256). The
//! state owner's `token.*` handlers and the connections' `auth` use these.

use sha2::{Digest, Sha256};

/// A new token: `kite_` and 64 hex digits (256 random bits).
pub(crate) fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("kite_{}", hex(&bytes))
}

/// What the store keeps of a token.
pub(crate) fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.trim().as_bytes()))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token's name: a person or a machine, short and plain (it is shown in logs and `status`).
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("kite_") && a.len() == 69);
        assert_eq!(hash(&a), hash(&format!(" {a}\n")), "pasted with spaces it is the same token");
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a[5..]));
        assert!(valid_name("ci-box.2") && !valid_name("") && !valid_name("a b") && !valid_name(&"x".repeat(65)));
    }
}
