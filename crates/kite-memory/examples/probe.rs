//! Prints similarities of sentence pairs (used to tune the duplicate threshold).
fn main() {
    let dir = std::env::var("KITE_MODEL_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/all-mpnet-base-v2").into());
    let cfg = kite_memory::EmbedConfig::resolve(Some(std::path::Path::new(&dir)), None).unwrap();
    let e = kite_memory::Embedder::load(&cfg).unwrap();
    let pairs = [
        ("Use SQLite in WAL mode for the task queue", "The task queue should use SQLite with WAL mode"),
        ("Use SQLite in WAL mode for the task queue\n\nWAL lets readers and the writer work at the same time.", "The task queue should use SQLite with WAL mode\n\nWith WAL, readers do not block the writer."),
        ("Use SQLite in WAL mode for the task queue", "The task queue retries failed jobs three times"),
        ("Use SQLite in WAL mode for the task queue", "Use PostgreSQL for the task queue"),
        ("Deploys are not allowed on Fridays", "Never ship to production on a Friday"),
        ("Deploys are not allowed on Fridays", "Deploys are allowed on Fridays"),
        ("Run cargo fmt before committing", "Format the code with rustfmt before each commit"),
        ("Run cargo fmt before committing", "Run clippy before committing"),
        ("Database migrations must be reversible\n\nEvery schema change ships with a down script so it can be rolled back.", "how do we undo a table alteration"),
        ("The user prefers short commit messages in the imperative mood", "how should I phrase my git log entries"),
        ("Session outcome: Upload worker crash fixed; queue moved from Redis to SQLite WAL", "Session outcome: Upload worker crash fixed; queue moved from Redis to SQLite WAL"),
    ];
    for (a, b) in pairs {
        let v = e.embed(&[a, b]).unwrap();
        let s: f32 = v[0].iter().zip(&v[1]).map(|(x, y)| x * y).sum();
        println!("{s:.3}  {a:?} | {b:?}");
    }
}
