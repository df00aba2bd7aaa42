//! Hot reload (placeholder API until the watcher lands).

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Snapshot;
use crate::telemetry::Metrics;

pub struct ReloadStatus {
    pub hash: String,
    pub last_reload_unix_ms: Option<u64>,
    pub last_error: Option<String>,
}

pub enum ReloadOutcome {
    Unchanged,
    Reloaded { hash: String },
    Failed(String),
}

pub struct Reloader {
    path: PathBuf,
    live: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
}

pub struct ReloadTask;

impl Reloader {
    pub fn new(path: PathBuf, live: Arc<ArcSwap<Snapshot>>, metrics: Arc<Metrics>) -> Self {
        Reloader {
            path,
            live,
            metrics,
        }
    }
    pub fn reload_now(&self) -> ReloadOutcome {
        match super::load_file(&self.path) {
            Ok(s) if s.hash == self.live.load().hash => ReloadOutcome::Unchanged,
            Ok(s) => {
                let hash = s.hash.clone();
                self.metrics.set_config_hash(&hash);
                self.live.store(Arc::new(s));
                self.metrics.reload_succeeded();
                ReloadOutcome::Reloaded { hash }
            }
            Err(e) => {
                self.metrics.reload_failed();
                ReloadOutcome::Failed(e.to_string())
            }
        }
    }
    pub fn status(&self) -> ReloadStatus {
        ReloadStatus {
            hash: self.live.load().hash.clone(),
            last_reload_unix_ms: None,
            last_error: None,
        }
    }
    pub fn spawn(self: Arc<Self>) -> std::io::Result<ReloadTask> {
        Ok(ReloadTask)
    }
}
