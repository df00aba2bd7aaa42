//! Hot reload (DESIGN.md §5): watch the **directories** of the config file and of every secret
//! file it read (a Kubernetes ConfigMap update swaps a `..data` symlink; a watch on the file itself
//! dies after the first update), ignore access events (kubelet reads the old files on every no-op
//! sync), debounce the burst, and reload only when the bytes changed. SIGHUP and a slow poll also
//! trigger a reload. A bad file never replaces a good one: the last good snapshot keeps serving,
//! the error is logged with its YAML path, counted (once per refused content: one save is one
//! refusal however many events, retries and polls see it), and shown on `/config`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{ConfigErrors, Snapshot};
use crate::telemetry::Metrics;

/// Quiet time that ends a burst of events (kubelet's swap is ~7 events).
/// Longest burst of watcher events swallowed before reloading anyway.
const MAX_BURST: Duration = Duration::from_secs(2);
const DEBOUNCE: Duration = Duration::from_millis(250);
/// Safety-net poll while the watcher works.
const POLL: Duration = Duration::from_secs(30);
/// Poll when no watcher could be created (e.g. inotify limits).
const POLL_WITHOUT_WATCHER: Duration = Duration::from_secs(2);

/// Builds a snapshot from the config file (the real one is [`super::load_file`]).
pub type Loader = dyn Fn(&Path) -> Result<Snapshot, ConfigErrors> + Send + Sync;

/// The result of one reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The files are byte for byte what was last loaded (or last refused).
    Unchanged,
    Reloaded {
        hash: String,
    },
    Failed(String),
}

/// What `/config` shows about reloads.
#[derive(Debug, Clone)]
pub struct ReloadStatus {
    pub hash: String,
    pub last_reload_unix_ms: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct History {
    /// Fingerprint of the files behind the last attempt, good or bad.
    last_fingerprint: Option<[u8; 32]>,
    /// Fingerprint of the bytes whose refusal was last counted (cleared by a good reload): the
    /// same refused bytes seen again — the retry after a failed reload, a late watcher event, a
    /// poll, an event from a secret file's directory — are one save, counted once.
    counted_refusal: Option<[u8; 32]>,
    last_reload_unix_ms: Option<u64>,
    last_error: Option<String>,
}

/// Owns reloading: the live snapshot, the file it comes from, and what happened last.
pub struct Reloader {
    path: PathBuf,
    live: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    loader: Box<Loader>,
    history: Mutex<History>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Reloader {
    pub fn new(path: PathBuf, live: Arc<ArcSwap<Snapshot>>, metrics: Arc<Metrics>) -> Self {
        Self::with_loader(
            path,
            live,
            metrics,
            Box::new(|p: &Path| super::load_file_to_serve(p)),
        )
    }

    pub fn with_loader(
        path: PathBuf,
        live: Arc<ArcSwap<Snapshot>>,
        metrics: Arc<Metrics>,
        loader: Box<Loader>,
    ) -> Self {
        let reloader = Reloader {
            path,
            live,
            metrics,
            loader,
            history: Mutex::new(History::default()),
        };
        let first = reloader.fingerprint();
        if let Ok(mut h) = reloader.history.lock() {
            h.last_fingerprint = first;
        }
        reloader
    }

    /// Hash of the config file and the live snapshot's secret files, as they are on disk now.
    fn fingerprint(&self) -> Option<[u8; 32]> {
        let mut hasher = Sha256::new();
        hasher.update(std::fs::read(&self.path).ok()?);
        for file in self.live.load().source_files.iter().skip(1) {
            // A missing secret file is a change too (the load will report it).
            hasher.update(std::fs::read(file).unwrap_or_default());
            hasher.update([0]);
        }
        Some(hasher.finalize().into())
    }

    /// Re-reads the files and swaps in a valid, changed config.
    pub fn reload_now(&self) -> ReloadOutcome {
        let fingerprint = self.fingerprint();
        if fingerprint.is_some()
            && self
                .history
                .lock()
                .map(|h| h.last_fingerprint == fingerprint)
                .unwrap_or(false)
        {
            return ReloadOutcome::Unchanged;
        }
        let loaded = (self.loader)(&self.path).and_then(|snapshot| {
            let refused = super::reload_errors(&self.live.load(), &snapshot);
            if refused.is_empty() {
                Ok(snapshot)
            } else {
                Err(ConfigErrors(refused))
            }
        });
        let outcome = match loaded {
            Ok(snapshot) if snapshot.hash == self.live.load().hash => ReloadOutcome::Unchanged,
            Ok(snapshot) => {
                let hash = snapshot.hash.clone();
                let snapshot_warnings = snapshot.warnings.clone();
                if snapshot.store != self.live.load().store {
                    tracing::warn!("config: store: changed; the request store keeps its settings until the next start");
                }
                self.live.store(Arc::new(snapshot));
                self.metrics.set_config_hash(&hash);
                tracing::info!(%hash, path = %self.path.display(), "config reloaded");
                for w in &snapshot_warnings {
                    tracing::warn!(warning = %w, "config");
                }
                ReloadOutcome::Reloaded { hash }
            }
            Err(errors) => {
                // Shown on /config and the console: no virtual-key names (credentials).
                let names = self
                    .live
                    .load()
                    .virtual_keys
                    .values()
                    .any(|k| k.label == k.name);
                ReloadOutcome::Failed(errors.shown(names))
            }
        };
        let count = self.remember(fingerprint, &outcome);
        // Counted only once `status()` shows the outcome: whoever sees the counter move (a
        // test, an alert, the console) then also sees the error or the new reload time.
        match &outcome {
            ReloadOutcome::Reloaded { .. } => self.metrics.reload_succeeded(),
            ReloadOutcome::Failed(text) if count => {
                tracing::warn!(path = %self.path.display(), errors = %text, "config reload refused; keeping the previous config");
                self.metrics.reload_failed();
            }
            ReloadOutcome::Failed(_) | ReloadOutcome::Unchanged => {}
        }
        outcome
    }

    /// Records the outcome for `status()`; returns whether a refusal is a new one to count
    /// (bytes not refused and counted already). Deduplicating by content, not by time: a
    /// debounce window cannot tell a late event for the same save from a second save, while
    /// the same bytes refused again are, whatever the delay, the same save.
    fn remember(&self, fingerprint: Option<[u8; 32]>, outcome: &ReloadOutcome) -> bool {
        let Ok(mut h) = self.history.lock() else {
            return true;
        };
        // Only remember bytes that were really looked at: a file mid-swap gets another try.
        h.last_fingerprint = fingerprint;
        match outcome {
            ReloadOutcome::Reloaded { .. } => {
                h.last_reload_unix_ms = Some(unix_ms());
                h.last_error = None;
                h.counted_refusal = None;
                false
            }
            ReloadOutcome::Failed(e) => {
                h.last_error = Some(e.clone());
                // A file that cannot be read (no fingerprint) is counted each time.
                let new = fingerprint.is_none() || h.counted_refusal != fingerprint;
                h.counted_refusal = fingerprint;
                new
            }
            ReloadOutcome::Unchanged => false,
        }
    }

    pub fn status(&self) -> ReloadStatus {
        let h = self.history.lock();
        ReloadStatus {
            hash: self.live.load().hash.clone(),
            last_reload_unix_ms: h.as_ref().ok().and_then(|h| h.last_reload_unix_ms),
            last_error: h.as_ref().ok().and_then(|h| h.last_error.clone()),
        }
    }

    /// The directories to watch: those of the config file and of every secret file.
    /// Whether a watcher event can change what the config is built from: it names one of the
    /// files read (or the config file), a kubelet `..data`-style swap entry, or no path at all.
    /// Other files in the same directories (a log written next to the config, an editor's swap
    /// file) must not trigger — or, by their steady writes, starve — a reload.
    fn relevant(&self, event: &notify::Event) -> bool {
        if event.paths.is_empty() {
            return true;
        }
        let snapshot = self.live.load();
        let names: BTreeSet<&std::ffi::OsStr> = std::iter::once(self.path.as_path())
            .chain(snapshot.source_files.iter().map(PathBuf::as_path))
            .filter_map(|p| p.file_name())
            .collect();
        event.paths.iter().any(|p| match p.file_name() {
            Some(name) => names.contains(name) || name.to_string_lossy().starts_with(".."),
            None => true,
        })
    }

    fn directories(&self) -> BTreeSet<PathBuf> {
        let snapshot = self.live.load();
        std::iter::once(self.path.as_path())
            .chain(snapshot.source_files.iter().map(PathBuf::as_path))
            .filter_map(|p| p.parent())
            .map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                }
            })
            .collect()
    }

    /// Runs the watcher on its own thread until the returned task is dropped.
    pub fn spawn(self: Arc<Self>) -> std::io::Result<ReloadTask> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        // Installed here, before the server starts, so an early SIGHUP never kills the process.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sighup = runtime.block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        })?;
        let thread = std::thread::Builder::new()
            .name("switchyard-reload".into())
            .spawn(move || runtime.block_on(self.watch_loop(sighup, stop_rx)))?;
        Ok(ReloadTask {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    async fn watch_loop(
        self: Arc<Self>,
        mut sighup: tokio::signal::unix::Signal,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut watcher = match notify::recommended_watcher(move |e| {
            let _ = tx.send(e);
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config directory; polling every 2 s instead");
                None
            }
        };
        let mut watched = BTreeSet::new();
        if let Some(w) = watcher.as_mut() {
            watched = rewatch(w, &watched, self.directories());
        }
        let mut poll = tokio::time::interval(if watcher.is_some() {
            POLL
        } else {
            POLL_WITHOUT_WATCHER
        });
        poll.tick().await;
        loop {
            let from_event = tokio::select! {
                _ = &mut stop => return,
                event = events.recv() => match event {
                    Some(Ok(e)) if matches!(e.kind, EventKind::Access(_)) || !self.relevant(&e) => continue,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "config watcher error; reloading to be safe");
                        true
                    }
                    Some(Ok(_)) => true,
                    None => false,
                },
                _ = sighup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    false
                }
                _ = poll.tick() => false,
            };
            if from_event {
                // Wait for DEBOUNCE without a relevant event, at most MAX_BURST in all: a
                // directory written to without pause still reloads.
                let until = tokio::time::Instant::now() + MAX_BURST;
                let mut quiet_at = tokio::time::Instant::now() + DEBOUNCE;
                loop {
                    let deadline = quiet_at.min(until);
                    match tokio::time::timeout_at(deadline, events.recv()).await {
                        Ok(Some(Ok(e))) if !self.relevant(&e) => {}
                        Ok(Some(_)) => quiet_at = tokio::time::Instant::now() + DEBOUNCE,
                        _ => break,
                    }
                }
            }
            let mut outcome = self.reload_now();
            if from_event && matches!(outcome, ReloadOutcome::Failed(_)) {
                // A new key's symlink can dangle for a moment during kubelet's swap: retry once.
                tokio::time::sleep(DEBOUNCE).await;
                if let Ok(mut h) = self.history.lock() {
                    h.last_fingerprint = None;
                }
                outcome = self.reload_now();
            }
            if matches!(outcome, ReloadOutcome::Reloaded { .. }) {
                if let Some(w) = watcher.as_mut() {
                    watched = rewatch(w, &watched, self.directories());
                }
            }
        }
    }
}

/// Watches `wanted`, unwatching directories no longer needed; returns what is watched.
fn rewatch(
    watcher: &mut notify::RecommendedWatcher,
    current: &BTreeSet<PathBuf>,
    wanted: BTreeSet<PathBuf>,
) -> BTreeSet<PathBuf> {
    for gone in current.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    let mut watched = BTreeSet::new();
    for dir in wanted {
        if current.contains(&dir) {
            watched.insert(dir);
            continue;
        }
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(dir);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; relying on SIGHUP and polling")
            }
        }
    }
    watched
}

/// The running watcher; stops it when dropped.
pub struct ReloadTask {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ReloadTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest config a reload accepts: a provider and a key.
    const SERVING: &str = "providers:\n  p: { kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }\nvirtual_keys:\n  vk: { provider: p }\n";

    fn write(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn reloader(dir: &Path) -> (Arc<Reloader>, Arc<Metrics>) {
        let path = dir.join("c.yaml");
        write(&path, SERVING);
        let live = Arc::new(ArcSwap::from_pointee(
            super::super::load_file(&path).unwrap(),
        ));
        let metrics = Arc::new(Metrics::new().unwrap());
        (
            Arc::new(Reloader::new(path, live, metrics.clone())),
            metrics,
        )
    }

    #[test]
    fn unchanged_bytes_do_not_reload_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (r, metrics) = reloader(dir.path());
        let first = r.status().hash;
        assert_eq!(r.reload_now(), ReloadOutcome::Unchanged);
        write(
            &dir.path().join("c.yaml"),
            &format!("{SERVING}threads: 1\n"),
        );
        assert!(matches!(r.reload_now(), ReloadOutcome::Reloaded { .. }));
        assert_ne!(r.status().hash, first);
        write(
            &dir.path().join("c.yaml"),
            &format!("{SERVING}threads: nope\n"),
        );
        assert!(matches!(r.reload_now(), ReloadOutcome::Failed(e) if e.contains("threads")));
        // The same bad bytes are not reported again on the next poll.
        assert_eq!(r.reload_now(), ReloadOutcome::Unchanged);
        assert!(r.status().last_error.unwrap().contains("threads"));
        // Empty, serve-nothing and key-dropping files are refused too; the good one stays.
        let live = r.status().hash;
        for bad in [
            "",
            "# all commented out\n",
            "providers: {}\nvirtual_keys: {}\n",
            "providers:\n  p: { kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }\ndefault_config: c\nconfigs:\n  c: { virtual_key: vk }\n",
        ] {
            write(&dir.path().join("c.yaml"), bad);
            assert!(matches!(r.reload_now(), ReloadOutcome::Failed(_)), "{bad:?}");
            assert_eq!(r.status().hash, live);
        }
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(text.contains("switchyard_config_reloads_total{result=\"error\"} 5"));
        assert!(text.contains("switchyard_config_reloads_total{result=\"success\"} 1"));
    }

    fn errors_counted(metrics: &Metrics) -> bool {
        let text = String::from_utf8(metrics.render()).unwrap();
        text.contains("switchyard_config_reloads_total{result=\"error\"} 1\n")
    }

    #[test]
    fn the_same_refused_bytes_are_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let (r, metrics) = reloader(dir.path());
        let path = dir.path().join("c.yaml");
        write(&path, &format!("{SERVING}threads: nope\n"));
        assert!(matches!(r.reload_now(), ReloadOutcome::Failed(_)));
        // The watch loop's retry forgets the fingerprint and loads the same bytes again.
        r.history.lock().unwrap().last_fingerprint = None;
        assert!(matches!(r.reload_now(), ReloadOutcome::Failed(_)));
        assert!(errors_counted(&metrics), "one save, one refusal");
        // Other bad bytes are another refusal; after a good reload the first bytes count again.
        write(&path, &format!("{SERVING}threads: [1]\n"));
        assert!(matches!(r.reload_now(), ReloadOutcome::Failed(_)));
        write(&path, SERVING);
        assert_eq!(r.reload_now(), ReloadOutcome::Unchanged);
        write(&path, &format!("{SERVING}threads: 1\n"));
        assert!(matches!(r.reload_now(), ReloadOutcome::Reloaded { .. }));
        write(&path, &format!("{SERVING}threads: nope\n"));
        assert!(matches!(r.reload_now(), ReloadOutcome::Failed(_)));
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(text.contains("switchyard_config_reloads_total{result=\"error\"} 3\n"));
    }

    #[test]
    fn one_bad_save_seen_by_the_watcher_is_one_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let (r, metrics) = reloader(dir.path());
        let task = r.clone().spawn().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Written in place, as an editor saves: truncate, write, close — several events.
        std::fs::write(
            dir.path().join("c.yaml"),
            format!("{SERVING}threads: nope\n"),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while r.status().last_error.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(r.status().last_error.is_some());
        // Past the debounce, the retry after a refusal and any late event.
        std::thread::sleep(DEBOUNCE * 4 + MAX_BURST);
        assert!(
            errors_counted(&metrics),
            "{}",
            String::from_utf8(metrics.render()).unwrap()
        );
        drop(task);
    }

    #[test]
    fn the_watcher_picks_up_a_rewrite_and_stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _) = reloader(dir.path());
        let before = r.status().hash;
        let task = r.clone().spawn().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        write(
            &dir.path().join("c.yaml"),
            &format!("{SERVING}threads: 3\n"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while r.status().hash == before && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_ne!(r.status().hash, before);
        drop(task);
    }
}
