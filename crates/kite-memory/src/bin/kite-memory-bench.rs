//! kite-memory-bench: measures the vault and prints a Markdown section for docs/BENCHMARKS.md on
//! stdout (progress goes to stderr).
//!
//! Measured: embedding throughput and one-query latency with the real model; vector search
//! latency at 10,000 and 100,000 notes against a brute-force dot-product scan and sqlite-vec's
//! exact KNN over the same vectors, with recall@10; hybrid search end to end; and retrieval
//! quality (nDCG@10) on a judged set: the built-in one, or a BEIR-format directory (`--beir DIR`
//! with corpus.jsonl, queries.jsonl, qrels/test.tsv, such as SciFact) when you have one.
//!
//! The 100k corpus cannot be embedded here in reasonable time (~150 notes/s on 2 cores), so the
//! vectors are synthetic but keep the real embeddings' geometry: a few thousand generated
//! developer notes are embedded with the real model, and each synthetic vector is a random convex
//! mix of two real ones plus Gaussian noise, normalized. Queries are real embeddings of held-out
//! question-style sentences.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use kite_memory::embed::{normalize, EmbedConfig, Embedder};
use kite_memory::index::{Index, DEFAULT_CANDIDATES};
use kite_memory::note::{Kind, Note};
use kite_memory::search::{fuse, Fusion, SearchOptions};
use kite_memory::{Vault, VaultConfig};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const COMPONENTS: &[&str] = &[
    "the task queue",
    "the lock manager",
    "the session registry",
    "the reaper",
    "the scheduler",
    "the socket server",
    "the MCP bridge",
    "the vault index",
    "the embedding worker",
    "the git worktree runner",
    "the config loader",
    "the event log",
    "the hook installer",
    "the retry policy",
    "the upload worker",
    "the billing service",
    "the login form",
    "the search page",
    "the CI pipeline",
    "the release script",
    "the database migrations",
    "the websocket gateway",
    "the cache layer",
    "the rate limiter",
    "the payment webhook",
    "the image resizer",
];
const ACTIONS: &[&str] = &[
    "must commit to SQLite before replying",
    "retries transient failures three times with backoff",
    "is owned by a single actor task",
    "was moved from Redis to SQLite in WAL mode",
    "times out after thirty seconds",
    "should never hold a mutex across an await",
    "logs every decision with its reason",
    "runs in its own process",
    "is rebuilt from the files on start",
    "rejects frames larger than one megabyte",
    "uses advisory file locks",
    "deadlocked when two sessions claimed the same task",
    "leaked file descriptors under load",
    "is configured through environment variables",
    "is tested with a temporary socket and no sleeps",
    "reads its templates from the prompts directory",
    "is flaky on slow CI machines",
    "was rewritten to stream results",
    "batches writes in one transaction",
    "drops stale entries after an hour",
];
const REASONS: &[&str] = &[
    "because a crash must not lose acknowledged work",
    "so that tests stay deterministic",
    "after an outage last week",
    "since the user prefers fewer moving parts",
    "to keep p99 latency low",
    "because the old approach corrupted data twice",
    "which keeps the daemon simple",
    "as agreed in the design review",
    "to avoid surprising the developers",
    "because two cores are all CI has",
];
const QUESTIONS: &[&str] = &[
    "why did {c} stop working",
    "how does {c} handle failures",
    "what did we decide about {c}",
    "is {c} safe when the process is killed",
    "where is {c} configured",
    "what went wrong with {c}",
    "how fast is {c}",
    "who owns the state of {c}",
];

fn sentence(rng: &mut Rng) -> String {
    let c = rng.pick(COMPONENTS);
    let a = rng.pick(ACTIONS);
    let r = rng.pick(REASONS);
    let mut s = format!("{c} {a} {r}.");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

fn question(rng: &mut Rng) -> String {
    rng.pick(QUESTIONS)
        .replace("{c}", rng.pick(COMPONENTS).trim_start_matches("the "))
}

fn pct(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[i.min(sorted_ms.len() - 1)]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64() * 1000.0)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn dummy_note(i: usize, text: &str) -> Note {
    let now = Utc::now();
    Note {
        id: format!("n{i}"),
        kind: Kind::Fact,
        title: text.split('.').next().unwrap_or(text).to_string(),
        tags: vec![],
        project: None,
        source: None,
        created: now,
        updated: now,
        supersedes: vec![],
        superseded_by: None,
        body: text.to_string(),
        extra: vec![],
    }
}

fn model_config() -> Result<EmbedConfig, String> {
    let dir = std::env::var_os("KITE_MODEL_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/all-mpnet-base-v2"
            ))
        });
    let dylib = std::env::var_os("KITE_ORT_DYLIB")
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH"))
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("..").join("libonnxruntime.so"));
    EmbedConfig::resolve(Some(&dir), Some(&dylib)).ok_or_else(|| "no model directory".to_string())
}

struct Args {
    quick: bool,
    /// Only the retrieval quality and paraphrase sections.
    quality_only: bool,
    beir: Option<PathBuf>,
    beir_limit: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        quality_only: false,
        beir: None,
        beir_limit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--quality-only" => args.quality_only = true,
            "--beir" => args.beir = Some(it.next().ok_or("--beir needs a directory")?.into()),
            "--beir-limit" => {
                args.beir_limit = Some(
                    it.next()
                        .ok_or("--beir-limit needs a number")?
                        .parse()
                        .map_err(|e| format!("{e}"))?,
                )
            }
            "-h" | "--help" => {
                println!("usage: kite-memory-bench [--quick] [--quality-only] [--beir DIR [--beir-limit N]]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("kite-memory-bench: {e}");
        std::process::exit(1);
    }
}

/// A vault error as this binary reports it.
fn err(e: kite_memory::MemoryError) -> String {
    e.to_string()
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let (n_real, n_queries, sizes): (usize, usize, Vec<usize>) = if args.quick {
        (400, 50, vec![10_000])
    } else {
        (2_000, 200, vec![10_000, 100_000])
    };
    let mut out = String::new();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    out.push_str("## Memory vault (kite-memory)\n\n");
    out.push_str(&format!(
        "Release build, {cores} cores, {} (int8 ONNX, {} dimensions) through fastembed/onnxruntime, batch 32, max {} tokens.{}\n\n",
        kite_memory::embed::MODEL_NAME,
        kite_memory::DIM,
        kite_memory::embed::MAX_TOKENS,
        if args.quick { " Quick run (`--quick`): fewer notes and queries." } else { "" }
    ));
    if args.quality_only {
        let embedder = Embedder::load(&model_config()?).map_err(err)?;
        out.push_str(&quality(&embedder, &args)?);
        out.push('\n');
        out.push_str(&paraphrase(&embedder)?);
        print!("{out}");
        return Ok(());
    }
    let e = embedding_section(&mut out, n_real, n_queries)?;
    search_sections(&mut out, &e, &sizes)?;

    // --- Retrieval quality -------------------------------------------------------------------
    out.push('\n');
    out.push_str(&quality(&e.embedder, &args)?);
    out.push('\n');
    out.push_str(&paraphrase(&e.embedder)?);
    print!("{out}");
    Ok(())
}

/// The model and what the embedding section made with it, which the search sections reuse.
struct Embedded {
    embedder: Embedder,
    /// The generated developer notes and their real embeddings.
    notes: Vec<String>,
    real: Vec<Vec<f32>>,
    /// The held-out questions and their real embeddings.
    queries: Vec<String>,
    qvecs: Vec<Vec<f32>>,
}

/// Loads the model, embeds `n_real` notes and `n_queries` questions, and appends the Embedding table.
fn embedding_section(
    out: &mut String,
    n_real: usize,
    n_queries: usize,
) -> Result<Embedded, String> {
    eprintln!("loading the model");
    let cfg = model_config()?;
    let (embedder, load_ms) = timed(|| Embedder::load(&cfg));
    let embedder = embedder.map_err(err)?;
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let notes: Vec<String> = (0..n_real)
        .map(|_| format!("{} {}", sentence(&mut rng), sentence(&mut rng)))
        .collect();
    let words: usize = notes
        .iter()
        .map(|n| n.split_whitespace().count())
        .sum::<usize>()
        / notes.len();
    eprintln!("embedding {n_real} notes");
    let _ = embedder.embed(&notes[..32.min(notes.len())]).map_err(err)?; // warm-up
    let (real, embed_ms) = timed(|| embedder.embed(&notes));
    let real = real.map_err(err)?;
    let throughput = n_real as f64 / (embed_ms / 1000.0);
    let norms_ok = real
        .iter()
        .all(|v| (v.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-3);
    let queries: Vec<String> = (0..n_queries).map(|_| question(&mut rng)).collect();
    let mut q_times = vec![];
    let mut qvecs = vec![];
    for q in &queries {
        let (v, ms) = timed(|| embedder.embed_one(q));
        qvecs.push(v.map_err(err)?);
        q_times.push(ms);
    }
    let q_times = sorted(q_times);
    out.push_str("### Embedding\n\n| measure | value |\n|---|---|\n");
    out.push_str(&format!("| model load | {:.0} ms |\n", load_ms));
    out.push_str(&format!(
        "| throughput ({n_real} notes of ~{words} words) | {throughput:.0} notes/s |\n"
    ));
    out.push_str(&format!(
        "| one query embedding (~7 words), p50 / p99 | {:.1} ms / {:.1} ms |\n",
        pct(&q_times, 0.5),
        pct(&q_times, 0.99)
    ));
    out.push_str(&format!(
        "| vectors unit length | {} |\n\n",
        if norms_ok { "yes" } else { "NO" }
    ));
    Ok(Embedded {
        embedder,
        notes,
        real,
        queries,
        qvecs,
    })
}

/// Appends the Vector search and Hybrid search sections: one index per size in `sizes`.
fn search_sections(out: &mut String, e: &Embedded, sizes: &[usize]) -> Result<(), String> {
    let (n_real, n_queries) = (e.notes.len(), e.queries.len());
    out.push_str("### Vector search, k = 10, query already embedded\n\n");
    out.push_str(&format!(
        "Vectors: {n_real} real embeddings of generated developer notes, expanded by random convex mixes of two of \
         them plus Gaussian noise (σ = 0.015 per dimension), normalized. Queries: {n_queries} real embeddings of \
         held-out questions. \"Ours\" = Hamming scan over 384-bit sign codes (centred on the corpus mean) for {DEFAULT_CANDIDATES} \
         candidates, then exact re-rank; \"brute force\" = exact dot product against every vector in memory; sqlite-vec = \
         `vec0` exact KNN from the index file. Recall@10 is against brute force.\n\n"
    ));
    out.push_str("| notes | ours p50 | ours p99 | brute force p50 | brute force p99 | ours / brute force (p50) | sqlite-vec exact p50 | recall@10 | cold load of vectors |\n|---|---|---|---|---|---|---|---|---|\n");
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut hybrid_rows = vec![];
    for &size in sizes {
        eprintln!("building an index of {size} notes");
        let path = tmp.path().join(format!("bench-{size}.db"));
        build_index(&path, size, e)?;
        out.push_str(&vector_row(&path, size, &e.qvecs)?);

        // --- Hybrid end to end over the same index, through the Vault facade ---------------------
        eprintln!("hybrid search over {size} notes");
        hybrid_rows.push(hybrid_row(tmp.path(), &path, size, e)?);
    }
    out.push_str("\n### Hybrid search end to end\n\nQuery embedding + vector search + FTS5 bm25 + fusion + reading the hits' rows, through `Vault::search` (k = 10, 50 per list); the keyword search alone is shown beside it. The synthetic notes' text is made of a small vocabulary, so their words are far more common than in real notes, which is the hard case for FTS5.\n\n| notes | hybrid p50 | hybrid p99 | keyword alone p50 | keyword alone p99 |\n|---|---|---|---|---|\n");
    for r in hybrid_rows {
        out.push_str(&r);
    }
    Ok(())
}

/// Writes an index of `size` synthetic notes at `path`: each vector a random convex mix of two
/// real embeddings plus Gaussian noise, normalized.
fn build_index(path: &Path, size: usize, e: &Embedded) -> Result<(), String> {
    let n_real = e.notes.len();
    let mut items = Vec::with_capacity(size);
    let mut vrng = Rng(size as u64 * 7919 + 1);
    for i in 0..size {
        let (a, b) = (vrng.below(n_real), vrng.below(n_real));
        let w = 0.3 + 0.4 * vrng.unit() as f32;
        let mut v: Vec<f32> = e.real[a]
            .iter()
            .zip(&e.real[b])
            .map(|(x, y)| w * x + (1.0 - w) * y + 0.015 * vrng.gauss() as f32)
            .collect();
        normalize(&mut v);
        let text = if w >= 0.5 { &e.notes[a] } else { &e.notes[b] };
        items.push((
            dummy_note(i, text),
            format!("n{i}.md"),
            String::new(),
            Some(v),
        ));
    }
    let mut index = Index::open(path).map_err(err)?;
    for (c, chunk) in items.chunks(10_000).enumerate() {
        index.insert_batch(chunk).map_err(err)?;
        eprintln!("  inserted {}", (c + 1) * 10_000.min(chunk.len()));
    }
    Ok(())
}

/// One row of the Vector search table: ours, brute force and sqlite-vec over the index at `path`.
fn vector_row(path: &Path, size: usize, qvecs: &[Vec<f32>]) -> Result<String, String> {
    let mut index = Index::open(path).map_err(err)?;
    let (_, load_ms) = timed(|| index.warm());
    let (mut ours, mut brute, mut sqlite) = (vec![], vec![], vec![]);
    let mut found = 0usize;
    for (i, q) in qvecs.iter().enumerate() {
        let (exact, ms) = timed(|| index.exact_search_ids(q, 10, false));
        brute.push(ms);
        let (approx, ms) = timed(|| index.vector_search_ids(q, 10, DEFAULT_CANDIDATES, false));
        ours.push(ms);
        let exact: HashSet<i64> = exact.map_err(err)?.into_iter().map(|h| h.0).collect();
        found += approx
            .map_err(err)?
            .iter()
            .filter(|h| exact.contains(&h.0))
            .count();
        if i < 20 {
            let (_, ms) = timed(|| index.sqlite_vec_knn(q, 10));
            sqlite.push(ms);
        }
    }
    let (ours, brute, sqlite) = (sorted(ours), sorted(brute), sorted(sqlite));
    let recall = found as f64 / (10 * qvecs.len()) as f64;
    Ok(format!(
        "| {size} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.3} ({:.0}x faster) | {:.1} ms | {recall:.3} | {:.0} ms |\n",
        pct(&ours, 0.5),
        pct(&ours, 0.99),
        pct(&brute, 0.5),
        pct(&brute, 0.99),
        pct(&ours, 0.5) / pct(&brute, 0.5),
        pct(&brute, 0.5) / pct(&ours, 0.5),
        pct(&sqlite, 0.5),
        load_ms
    ))
}

/// One row of the Hybrid search table: `Vault::search` and the keyword search alone over the
/// index at `path` (the vault directory under `tmp` is empty).
fn hybrid_row(tmp: &Path, path: &Path, size: usize, e: &Embedded) -> Result<String, String> {
    let mut config = VaultConfig::new(tmp.join("empty-vault"), path);
    config.embedder = Some(e.embedder.clone());
    config.sync_on_open = false;
    let mut vault = Vault::open(config).map_err(err)?;
    vault.index_mut().warm().map_err(err)?;
    let (mut times, mut kw) = (vec![], vec![]);
    for q in &e.queries {
        let (r, ms) = timed(|| vault.search(q, &SearchOptions::default()));
        r.map_err(err)?;
        times.push(ms);
        let (r, ms) = timed(|| vault.index_mut().keyword_search(q, 50, false));
        r.map_err(err)?;
        kw.push(ms);
    }
    let (times, kw) = (sorted(times), sorted(kw));
    Ok(format!(
        "| {size} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |\n",
        pct(&times, 0.5),
        pct(&times, 0.99),
        pct(&kw, 0.5),
        pct(&kw, 0.99)
    ))
}

/// A judged retrieval set: documents, queries, and graded relevance.
struct Judged {
    name: String,
    docs: Vec<(String, String, String)>,
    queries: Vec<(String, String)>,
    types: HashMap<String, String>,
    qrels: HashMap<String, HashMap<String, u32>>,
}

fn builtin_judged() -> Result<Judged, String> {
    let v: serde_json::Value = serde_json::from_str(include_str!("../../data/judged-notes.json"))
        .map_err(|e| format!("judged set: {e}"))?;
    let mut j = Judged {
        name: "kite judged notes (built in)".into(),
        docs: vec![],
        queries: vec![],
        types: HashMap::new(),
        qrels: HashMap::new(),
    };
    for d in v["docs"].as_array().ok_or("judged set: no docs")? {
        j.docs.push((
            d["id"].as_str().unwrap_or("").into(),
            d["title"].as_str().unwrap_or("").into(),
            d["body"].as_str().unwrap_or("").into(),
        ));
    }
    for q in v["queries"].as_array().ok_or("judged set: no queries")? {
        let id = q["id"].as_str().unwrap_or("").to_string();
        j.queries
            .push((id.clone(), q["text"].as_str().unwrap_or("").into()));
        j.types.insert(
            id.clone(),
            q["type"].as_str().unwrap_or("question").to_string(),
        );
        let rels = j.qrels.entry(id).or_default();
        for r in q["relevant"].as_array().into_iter().flatten() {
            if let Some(doc) = r.as_str() {
                rels.insert(doc.to_string(), 1);
            }
        }
    }
    Ok(j)
}

fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// A BEIR directory: corpus.jsonl, queries.jsonl, qrels/test.tsv.
fn beir_judged(dir: &Path, limit: Option<usize>) -> Result<Judged, String> {
    let mut j = Judged {
        name: format!("BEIR {}", dir.display()),
        docs: vec![],
        queries: vec![],
        types: HashMap::new(),
        qrels: HashMap::new(),
    };
    let qrels = std::fs::read_to_string(dir.join("qrels/test.tsv"))
        .map_err(|e| format!("qrels/test.tsv: {e}"))?;
    for line in qrels.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 3 {
            let score: u32 = f[2].trim().parse().unwrap_or(0);
            if score > 0 {
                j.qrels
                    .entry(f[0].to_string())
                    .or_default()
                    .insert(f[1].to_string(), score);
            }
        }
    }
    for d in read_jsonl(&dir.join("corpus.jsonl"))? {
        let id = d["_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| d["_id"].as_i64().map(|n| n.to_string()))
            .unwrap_or_default();
        j.docs.push((
            id,
            d["title"].as_str().unwrap_or("").into(),
            d["text"].as_str().unwrap_or("").into(),
        ));
    }
    for q in read_jsonl(&dir.join("queries.jsonl"))? {
        let id = q["_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| q["_id"].as_i64().map(|n| n.to_string()))
            .unwrap_or_default();
        if j.qrels.contains_key(&id) {
            j.queries
                .push((id, q["text"].as_str().unwrap_or("").into()));
        }
    }
    if let Some(n) = limit {
        j.queries.truncate(n);
    }
    Ok(j)
}

fn ndcg10(ranked: &[String], rels: &HashMap<String, u32>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, d)| {
            let g = *rels.get(d).unwrap_or(&0) as f64;
            (2f64.powf(g) - 1.0) / ((i + 2) as f64).log2()
        })
        .sum();
    let mut ideal: Vec<u32> = rels.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| (2f64.powf(*g as f64) - 1.0) / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

fn quality(embedder: &Embedder, args: &Args) -> Result<String, String> {
    let err = |e: kite_memory::MemoryError| e.to_string();
    let judged = match &args.beir {
        Some(dir) => beir_judged(dir, args.beir_limit)?,
        None => builtin_judged()?,
    };
    eprintln!(
        "retrieval quality on {} ({} docs, {} queries)",
        judged.name,
        judged.docs.len(),
        judged.queries.len()
    );
    let mut index = Index::open_in_memory().map_err(err)?;
    let texts: Vec<String> = judged
        .docs
        .iter()
        .map(|(_, t, b)| kite_memory::note::embed_text(t, b))
        .collect();
    let mut vectors = vec![];
    for (i, chunk) in texts.chunks(256).enumerate() {
        vectors.extend(embedder.embed(chunk).map_err(err)?);
        eprintln!("  embedded {}", ((i + 1) * 256).min(texts.len()));
    }
    let mut id_of = HashMap::new();
    let items: Vec<_> = judged
        .docs
        .iter()
        .zip(vectors)
        .enumerate()
        .map(|(i, ((id, title, body), v))| {
            let safe = format!("d{i}");
            id_of.insert(safe.clone(), id.clone());
            let mut n = dummy_note(i, body);
            n.id = safe.clone();
            n.title = title.clone();
            (n, format!("{safe}.md"), String::new(), Some(v))
        })
        .collect();
    index.insert_batch(&items).map_err(err)?;
    let depth = 100;
    let variants: Vec<(&str, SearchOptions)> = vec![
        (
            "hybrid, RRF (equal weights, cosine floor 0.15)",
            SearchOptions {
                k: 10,
                depth,
                fusion: Fusion::Rrf,
                ..SearchOptions::default()
            },
        ),
        (
            "hybrid, RRF, no cosine floor",
            SearchOptions {
                k: 10,
                depth,
                fusion: Fusion::Rrf,
                min_similarity: -1.0,
                ..SearchOptions::default()
            },
        ),
        (
            "hybrid, RRF, keyword weight 0.5",
            SearchOptions {
                k: 10,
                depth,
                fusion: Fusion::Rrf,
                keyword_weight: 0.5,
                ..SearchOptions::default()
            },
        ),
        (
            "hybrid, convex alpha 0.5",
            SearchOptions {
                k: 10,
                depth,
                fusion: Fusion::Convex { alpha: 0.5 },
                ..SearchOptions::default()
            },
        ),
        (
            "hybrid, convex alpha 0.7",
            SearchOptions {
                k: 10,
                depth,
                fusion: Fusion::Convex { alpha: 0.7 },
                ..SearchOptions::default()
            },
        ),
        (
            "hybrid, convex alpha 0.8",
            SearchOptions {
                k: 10,
                depth,
                fusion: Fusion::Convex { alpha: 0.8 },
                ..SearchOptions::default()
            },
        ),
        (
            "hybrid, convex alpha 0.9",
            SearchOptions {
                k: 10,
                depth,
                fusion: Fusion::Convex { alpha: 0.9 },
                ..SearchOptions::default()
            },
        ),
        (
            "**hybrid, convex alpha 0.85 (the default of `kite vault search`)**",
            SearchOptions {
                k: 10,
                depth,
                ..SearchOptions::default()
            },
        ),
    ];
    // Per query type: sums of nDCG@10 for vector, keyword and each hybrid variant, and counts.
    let mut sums: HashMap<String, (Vec<f64>, usize)> = HashMap::new();
    let cols = 2 + variants.len();
    for (qid, text) in &judged.queries {
        let rels = &judged.qrels[qid];
        let qv = embedder.embed_one(text).map_err(err)?;
        let vector = index.vector_search(&qv, depth, false).map_err(err)?;
        let keyword = index.keyword_search(text, depth, false).map_err(err)?;
        let map = |ids: Vec<String>| {
            ids.into_iter()
                .filter_map(|d| id_of.get(&d).cloned())
                .collect::<Vec<_>>()
        };
        let mut row = vec![
            ndcg10(
                &map(vector.iter().map(|(n, _)| n.id.clone()).collect()),
                rels,
            ),
            ndcg10(
                &map(keyword.iter().map(|(n, _)| n.id.clone()).collect()),
                rels,
            ),
        ];
        for (_, opts) in &variants {
            row.push(ndcg10(
                &map(fuse(&vector, &keyword, opts, Utc::now())
                    .into_iter()
                    .map(|h| h.id)
                    .collect()),
                rels,
            ));
        }
        let ty = judged
            .types
            .get(qid)
            .cloned()
            .unwrap_or_else(|| "all".into());
        for key in ["all".to_string(), ty] {
            let e = sums.entry(key).or_insert_with(|| (vec![0.0; cols], 0));
            e.0.iter_mut().zip(&row).for_each(|(a, b)| *a += b);
            e.1 += 1;
        }
        if sums.len() > 1 && sums.contains_key("all") && judged.types.is_empty() {
            sums.retain(|k, _| k == "all");
        }
    }
    let mut kinds: Vec<String> = sums.keys().filter(|k| *k != "all").cloned().collect();
    kinds.sort();
    kinds.insert(0, "all".into());
    let mut s = format!(
        "### Retrieval quality (nDCG@10)\n\nSet: {} — {} documents, {} queries.\n\n| retriever | {} |\n|---|{}\n",
        judged.name,
        judged.docs.len(),
        judged.queries.len(),
        kinds.iter().map(|k| format!("{k} ({})", sums[k].1)).collect::<Vec<_>>().join(" | "),
        "---|".repeat(kinds.len()),
    );
    let mut names = vec!["vector only", "keyword only (FTS5 bm25)"];
    names.extend(variants.iter().map(|(n, _)| *n));
    for (i, name) in names.iter().enumerate() {
        let cells: Vec<String> = kinds
            .iter()
            .map(|k| format!("{:.3}", sums[k].0[i] / sums[k].1.max(1) as f64))
            .collect();
        s.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    if args.beir.is_none() {
        s.push_str(
            "\nBEIR SciFact is not available from the package registries this project may use (no PyPI or npm \
             package ships its files; `beir` and `ir_datasets` download them at run time), so the built-in set \
             (crates/kite-memory/data/judged-notes.json) is used: 60 developer notes of the kind the vault holds; \
             32 questions as a later session would ask them, most of them paraphrases sharing few or no words with \
             their notes; and 8 identifier look-ups (error names, flags, API names), added after the first \
             measurement showed the set had none. The fusion weight was chosen on this set, so the hybrid figure \
             is optimistic; RRF is shown for comparison. Run with `--beir DIR` on a BEIR-format SciFact to compare \
             with the published figures (all-MiniLM-L6-v2 0.645, BM25 0.687).\n",
        );
    }
    Ok(s)
}

/// The model before this one (all-MiniLM-L6-v2, int8), which `make setup` keeps in
/// `models/all-minilm-l6-v2` for this comparison; `KITE_BENCH_BEFORE_MODEL_DIR` names another.
fn before_model() -> Option<(String, Embedder)> {
    let dir = std::env::var_os("KITE_BENCH_BEFORE_MODEL_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/all-minilm-l6-v2"
            ))
        });
    let ort = model_config().ok()?.ort_dylib;
    let cfg = EmbedConfig {
        model_dir: dir.clone(),
        ort_dylib: ort,
    };
    match Embedder::load(&cfg) {
        Ok(e) => Some((
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            e,
        )),
        Err(e) => {
            eprintln!("no model to compare with in {}: {e}", dir.display());
            None
        }
    }
}

/// Top-1 and top-3 (out of the queries) and the queries whose note was not first, by cosine over
/// the notes' embedded text.
fn rank_pairs(
    embedder: &Embedder,
    notes: &[(String, String)],
    queries: &[(String, String)],
) -> Result<(usize, usize, Vec<String>), String> {
    let texts: Vec<String> = notes
        .iter()
        .map(|(t, b)| kite_memory::note::embed_text(t, b))
        .collect();
    let nv = embedder.embed(&texts).map_err(err)?;
    let (mut top1, mut top3, mut misses) = (0, 0, vec![]);
    for (want, q) in queries {
        let qv = embedder.embed_one(q).map_err(err)?;
        let mut scored: Vec<(usize, f32)> = nv
            .iter()
            .enumerate()
            .map(|(i, v)| (i, kite_memory::embed::dot(&qv, v)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let want_i = notes
            .iter()
            .position(|(t, _)| t == want)
            .ok_or("a query names no note")?;
        let rank = scored
            .iter()
            .position(|(i, _)| *i == want_i)
            .unwrap_or(usize::MAX);
        top1 += usize::from(rank == 0);
        top3 += usize::from(rank < 3);
        if rank != 0 {
            misses.push(format!("\"{q}\" (rank {})", rank + 1));
        }
    }
    Ok((top1, top3, misses))
}

/// Vector-only nDCG@10 on the built-in judged notes, by brute force (any model's size).
fn judged_vector_ndcg(embedder: &Embedder) -> Result<f64, String> {
    let j = builtin_judged()?;
    let texts: Vec<String> = j
        .docs
        .iter()
        .map(|(_, t, b)| kite_memory::note::embed_text(t, b))
        .collect();
    let dv = embedder.embed(&texts).map_err(err)?;
    let mut sum = 0.0;
    for (qid, text) in &j.queries {
        let qv = embedder.embed_one(text).map_err(err)?;
        let mut scored: Vec<(usize, f32)> = dv
            .iter()
            .enumerate()
            .map(|(i, v)| (i, kite_memory::embed::dot(&qv, v)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let ranked: Vec<String> = scored
            .iter()
            .take(10)
            .map(|(i, _)| j.docs[*i].0.clone())
            .collect();
        sum += ndcg10(&ranked, &j.qrels[qid]);
    }
    Ok(sum / j.queries.len().max(1) as f64)
}

/// Paraphrase recall (`bench/judged/paraphrase.json`: queries that share no content word with
/// their note), the shipped model against the one before it, in the same run.
fn paraphrase(shipped: &Embedder) -> Result<String, String> {
    let set = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/judged/paraphrase.json");
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&set).map_err(|e| format!("{}: {e}", set.display()))?,
    )
    .map_err(|e| format!("{}: {e}", set.display()))?;
    let mut title_of = HashMap::new();
    let notes: Vec<(String, String)> = v["notes"]
        .as_array()
        .ok_or("paraphrase set: no notes")?
        .iter()
        .map(|n| {
            let (t, b) = (
                n["title"].as_str().unwrap_or("").to_string(),
                n["body"].as_str().unwrap_or("").to_string(),
            );
            title_of.insert(n["id"].as_str().unwrap_or("").to_string(), t.clone());
            (t, b)
        })
        .collect();
    let queries: Vec<(String, String)> = v["queries"]
        .as_array()
        .ok_or("paraphrase set: no queries")?
        .iter()
        .map(|q| {
            (
                title_of
                    .get(q["note"].as_str().unwrap_or(""))
                    .cloned()
                    .unwrap_or_default(),
                q["query"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    eprintln!(
        "paraphrase recall: {} notes, {} queries",
        notes.len(),
        queries.len()
    );
    let mut rows = vec![];
    if let Some((name, before)) = before_model() {
        rows.push((
            format!("before: {name}"),
            rank_pairs(&before, &notes, &queries)?,
            judged_vector_ndcg(&before)?,
        ));
    }
    rows.push((
        format!("**shipped: {}**", kite_memory::embed::MODEL_NAME),
        rank_pairs(shipped, &notes, &queries)?,
        judged_vector_ndcg(shipped)?,
    ));
    let n = queries.len();
    let mut md = format!(
        "### Paraphrase recall\n\n`bench/judged/paraphrase.json`: {} notes and {n} questions, each asking for its note in words that share no content word with it \
         (checked by `bench/judged/check_paraphrase.py`; the set was written before the model was chosen and kept fixed). Top-1: the note is the nearest by cosine; \
         the judged notes' vector-only nDCG@10 is beside it, so that a model that wins here and loses there shows.\n\n\
         | model | top-1 | top-3 | judged notes, vector nDCG@10 |\n|---|---|---|---|\n",
        notes.len()
    );
    let pct = |k: usize| format!("{:.0}% ({k}/{n})", 100.0 * k as f64 / n.max(1) as f64);
    for (name, (t1, t3, _), nd) in &rows {
        md.push_str(&format!(
            "| {name} | {} | {} | {nd:.3} |\n",
            pct(*t1),
            pct(*t3)
        ));
    }
    if let Some((_, (_, _, misses), _)) = rows.last() {
        if !misses.is_empty() {
            md.push_str(&format!(
                "\nNot first with the shipped model: {}.\n",
                misses.join("; ")
            ));
        }
    }
    Ok(md)
}
