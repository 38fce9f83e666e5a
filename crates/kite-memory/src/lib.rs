//! kite-memory: the vault that lets every new agent session start knowing what earlier ones
//! learned.
//!
//! The Markdown note files in the vault directory are the truth; the SQLite index beside them
//! (FTS5 for keywords, sqlite-vec for vectors) is derived and can always be rebuilt from them.
//! [`Vault`] is the facade the CLI, the daemon and the hooks use.

pub mod embed;
pub mod error;
pub mod extract;
pub mod index;
pub mod inject;
pub mod note;
pub mod redact;
pub mod search;
pub mod transcript;
pub mod vault;
pub mod work;

pub use embed::{EmbedConfig, Embedder, DIM};
pub use error::{MemoryError, Result};
pub use extract::{BuiltinExtractor, CommandExtractor, Extractor, ProposedNote};
pub use index::{Index, SyncReport};
pub use note::{Kind, NewNote, Note, MAX_BODY_BYTES};
pub use search::{SearchHit, SearchMode, SearchOptions};
pub use transcript::Transcript;
pub use inject::{render_within, Ask, Injected, Injection, Reason};
pub use vault::{AddOutcome, ExtractReport, Stats, Vault, VaultConfig};
