//! The vectors in memory: each note's embedding with a sign code, scanned by Hamming distance
//! for candidates that are then re-ranked exactly (see the module above).

use super::*;

/// The vectors of the index in memory, with their sign codes.
pub(super) struct VectorCache {
    rowids: Vec<i64>,
    active: Vec<bool>,
    vecs: Vec<f32>,
    codes: Vec<[u64; WORDS]>,
    mean: Vec<f32>,
    pos: HashMap<i64, usize>,
}

impl VectorCache {
    pub(super) fn new(rowids: Vec<i64>, active: Vec<bool>, vecs: Vec<f32>) -> VectorCache {
        let n = rowids.len();
        let mut mean = vec![0.0f32; DIM];
        if n > 0 {
            for v in vecs.chunks_exact(DIM) {
                for (m, x) in mean.iter_mut().zip(v) {
                    *m += x;
                }
            }
            mean.iter_mut().for_each(|m| *m /= n as f32);
        }
        let codes = vecs.chunks_exact(DIM).map(|v| sign_code(v, &mean)).collect();
        let pos = rowids.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        VectorCache { rowids, active, vecs, codes, mean, pos }
    }

    pub(super) fn upsert(&mut self, rowid: i64, v: &[f32], active: bool) {
        let code = sign_code(v, &self.mean);
        if let Some(&i) = self.pos.get(&rowid) {
            self.vecs[i * DIM..(i + 1) * DIM].copy_from_slice(v);
            self.codes[i] = code;
            self.active[i] = active;
        } else {
            self.pos.insert(rowid, self.rowids.len());
            self.rowids.push(rowid);
            self.active.push(active);
            self.vecs.extend_from_slice(v);
            self.codes.push(code);
        }
    }

    pub(super) fn set_active(&mut self, rowid: i64, active: bool) {
        if let Some(&i) = self.pos.get(&rowid) {
            self.active[i] = active;
        }
    }

    /// Hamming scan for `candidates`, then exact re-rank; returns (rowid, similarity), best first.
    pub(super) fn search(&self, q: &[f32], k: usize, candidates: usize, include_inactive: bool) -> Vec<(i64, f32)> {
        let n = self.rowids.len();
        if n == 0 || k == 0 {
            return vec![];
        }
        let qc = sign_code(q, &self.mean);
        let c = candidates.max(k);
        let mut dist: Vec<u16> = Vec::with_capacity(n);
        let mut hist = [0u32; DIM + 2];
        for (i, code) in self.codes.iter().enumerate() {
            let d = if include_inactive || self.active[i] {
                let mut d = 0u32;
                for w in 0..WORDS {
                    d += (code[w] ^ qc[w]).count_ones();
                }
                d as u16
            } else {
                (DIM + 1) as u16
            };
            hist[d as usize] += 1;
            dist.push(d);
        }
        // Smallest threshold t such that at least c codes are at distance <= t.
        let mut cum = 0u32;
        let mut threshold = DIM as u16;
        for (d, &count) in hist.iter().enumerate().take(DIM + 1) {
            cum += count;
            if cum as usize >= c {
                threshold = d as u16;
                break;
            }
        }
        let mut scored: Vec<(i64, f32)> = Vec::with_capacity(c + 64);
        for (i, &d) in dist.iter().enumerate() {
            if d <= threshold {
                scored.push((self.rowids[i], dot(q, &self.vecs[i * DIM..(i + 1) * DIM])));
            }
        }
        top_k(scored, k)
    }

    /// Exact scan over every vector (the reference for recall and for the benchmark).
    pub(super) fn exact(&self, q: &[f32], k: usize, include_inactive: bool) -> Vec<(i64, f32)> {
        let scored = self
            .vecs
            .chunks_exact(DIM)
            .enumerate()
            .filter(|(i, _)| include_inactive || self.active[*i])
            .map(|(i, v)| (self.rowids[i], dot(q, v)))
            .collect();
        top_k(scored, k)
    }
}

fn top_k(mut scored: Vec<(i64, f32)>, k: usize) -> Vec<(i64, f32)> {
    let by_score = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, by_score);
        scored.truncate(k);
    }
    scored.sort_by(by_score);
    scored
}

fn sign_code(v: &[f32], mean: &[f32]) -> [u64; WORDS] {
    let mut code = [0u64; WORDS];
    for (i, (x, m)) in v.iter().zip(mean).enumerate() {
        if x > m {
            code[i / 64] |= 1u64 << (i % 64);
        }
    }
    code
}

