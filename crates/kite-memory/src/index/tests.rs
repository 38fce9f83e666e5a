//! The index on real SQLite files with sqlite-vec and FTS5.
use super::*;
use chrono::Utc;

fn note(id: &str, title: &str, body: &str) -> Note {
    Note {
        id: id.into(),
        kind: crate::note::Kind::Fact,
        title: title.into(),
        tags: vec!["t".into()],
        project: None,
        source: None,
        created: Utc::now(),
        updated: Utc::now(),
        supersedes: vec![],
        superseded_by: None,
        body: body.into(),
        extra: vec![],
    }
}

fn unit(seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    crate::embed::normalize(&mut v);
    v
}

#[test]
fn fts_query_quotes_words() {
    assert_eq!(
        fts_query("what is the WAL mode?").as_deref(),
        Some("\"wal\" OR \"mode\"")
    );
    assert_eq!(
        fts_query("NEAR(\"a\" b) AND -x*").as_deref(),
        Some("\"near\" OR \"b\" OR \"x\"")
    );
    assert_eq!(fts_query("  ?! "), None);
    assert_eq!(fts_query("the").as_deref(), Some("\"the\""));
}

#[test]
fn common_words_do_not_choose_candidates_on_large_indexes() {
    let mut ix = Index::open_in_memory().unwrap();
    let mut items: Vec<_> = (0..KEYWORD_BUDGET + 500)
        .map(|i| {
            let body = if i % 2 == 0 {
                "common frequent words"
            } else {
                "common words only"
            };
            (
                note(&format!("n{i}"), "filler", body),
                format!("n{i}.md"),
                "h".to_string(),
                None,
            )
        })
        .collect();
    items.push((
        note("r1", "the rare word", "common rare"),
        "r1.md".into(),
        "h".into(),
        None,
    ));
    items.push((
        note("r2", "another", "rare"),
        "r2.md".into(),
        "h".into(),
        None,
    ));
    ix.insert_batch(&items).unwrap();
    let hits = ix.keyword_search("common rare", 10, false).unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.0.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"r1") && ids.contains(&"r2"));
    // Only common words: the notes holding all of them.
    let hits = ix.keyword_search("common frequent", 5, false).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits
        .iter()
        .all(|h| h.0.id.trim_start_matches('n').parse::<usize>().unwrap() % 2 == 0));
    assert!(ix.keyword_search("absent", 5, false).unwrap().is_empty());
}

#[test]
fn vectors_written_by_another_connection_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx.db");
    let mut a = Index::open(&path).unwrap();
    a.upsert(&note("a", "one", "x"), "a.md", "h", Some(&unit(1)))
        .unwrap();
    a.warm().unwrap();
    let mut b = Index::open(&path).unwrap();
    b.upsert(&note("b", "two", "y"), "b.md", "h", Some(&unit(2)))
        .unwrap();
    let hits = a.vector_search(&unit(2), 1, false).unwrap();
    assert_eq!(hits[0].0.id, "b");
}

#[test]
fn upsert_search_remove() {
    let mut ix = Index::open_in_memory().unwrap();
    ix.upsert(
        &note("a", "SQLite WAL mode", "use write-ahead logging"),
        "a.md",
        "h1",
        Some(&unit(1)),
    )
    .unwrap();
    ix.upsert(
        &note("b", "Deploy on Fridays", "never"),
        "b.md",
        "h2",
        Some(&unit(2)),
    )
    .unwrap();
    let hits = ix.keyword_search("wal logging", 10, false).unwrap();
    assert_eq!(hits[0].0.id, "a");
    let hits = ix.vector_search(&unit(2), 1, false).unwrap();
    assert_eq!(hits[0].0.id, "b");
    assert!((hits[0].1 - 1.0).abs() < 1e-5);
    let knn = ix.sqlite_vec_knn(&unit(2), 1).unwrap();
    assert!((knn[0].1 - 1.0).abs() < 1e-4);
    // Supersede b: it disappears from default searches.
    let mut b = note("b", "Deploy on Fridays", "never");
    b.superseded_by = Some("a".into());
    ix.upsert(&b, "b.md", "h3", Some(&unit(2))).unwrap();
    assert!(ix
        .vector_search(&unit(2), 2, false)
        .unwrap()
        .iter()
        .all(|h| h.0.id != "b"));
    assert!(ix.keyword_search("fridays", 5, false).unwrap().is_empty());
    assert_eq!(ix.keyword_search("fridays", 5, true).unwrap().len(), 1);
    assert!(ix.remove("a").unwrap());
    assert!(ix.keyword_search("wal", 5, true).unwrap().is_empty());
    assert_eq!(ix.len().unwrap(), 1);
}

#[test]
fn approximate_search_matches_exact_on_random_vectors() {
    let mut ix = Index::open_in_memory().unwrap();
    let items: Vec<_> = (0..3000u64)
        .map(|i| {
            (
                note(&format!("n{i}"), "t", "b"),
                format!("n{i}.md"),
                "h".to_string(),
                Some(unit(i)),
            )
        })
        .collect();
    ix.insert_batch(&items).unwrap();
    let mut found = 0;
    for s in 0..20u64 {
        let q = unit(100_000 + s);
        let exact: HashSet<i64> = ix
            .exact_search_ids(&q, 10, false)
            .unwrap()
            .into_iter()
            .map(|h| h.0)
            .collect();
        let approx = ix
            .vector_search_ids(&q, 10, DEFAULT_CANDIDATES, false)
            .unwrap();
        found += approx.iter().filter(|h| exact.contains(&h.0)).count();
    }
    // Random vectors are the hard case for sign codes; real embeddings do better.
    assert!(
        found as f64 / 200.0 >= 0.8,
        "recall {}",
        found as f64 / 200.0
    );
}

#[test]
fn vectors_of_another_models_size_are_dropped_and_the_notes_embedded_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    {
        let mut ix = Index::open(&path).unwrap();
        ix.insert_batch(&[(
            note("a", "A note", "body"),
            "a.md".into(),
            "h".into(),
            Some(unit(1)),
        )])
        .unwrap();
        // As an index of the previous model (384 dimensions) left it.
        ix.conn
            .execute_batch("DROP TABLE notes_vec; CREATE VIRTUAL TABLE notes_vec USING vec0(embedding float[384]); UPDATE notes SET embedded = 1;")
            .unwrap();
        ix.set_meta("model", "all-MiniLM-L6-v2").unwrap();
    }
    let ix = Index::open(&path).unwrap();
    let sql: String = ix
        .conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'notes_vec'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains(&format!("float[{DIM}]")), "{sql}");
    let embedded: i64 = ix
        .conn
        .query_row("SELECT count(*) FROM notes WHERE embedded = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(embedded, 0, "every note is embedded again by the next sync");
    assert_eq!(
        ix.get("a").unwrap().map(|n| n.title),
        Some("A note".to_string()),
        "the note itself stays"
    );
    assert!(ix.vector_of("a").unwrap().is_none());
}
