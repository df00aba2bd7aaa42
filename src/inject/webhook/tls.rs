//! The webhook's serving certificate, from mounted files, hot-reloaded. A cert-manager or
//! Secret rotation reaches the pod as kubelet's atomic `..data` symlink swap in the Secret
//! volume, so the **directories** of the two files are watched (a watch on a file itself dies
//! with the first swap; see `config/watch.rs`), and their contents are also polled every few
//! seconds as a safety net for missed events. A new pair is served to new connections; a
//! partial, corrupt or mismatched pair keeps the old one (logged once per content seen). A
//! missing or invalid pair at start is an error naming the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// How often the files are re-read even without a watcher event.
const POLL: Duration = Duration::from_secs(5);
/// Quiet time that ends a burst of watcher events (kubelet's swap is several).
const DEBOUNCE: Duration = Duration::from_millis(250);
/// A certificate expiring sooner than this is logged as a warning when loaded.
const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("{key} is not a usable private key for the certificate in {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The two mounted files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn fingerprint(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((cert.len() as u64).to_be_bytes());
    hasher.update(cert);
    hasher.update(key);
    hasher.finalize().into()
}

impl CertFiles {
    /// Reads and checks the pair: a certificate chain, and the private key of its first
    /// certificate. Also returns the fingerprint of the bytes read.
    pub fn load(&self) -> Result<(CertifiedKey, [u8; 32]), TlsError> {
        let cert_pem = read(&self.cert)?;
        let key_pem = read(&self.key)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
            path: self.key.clone(),
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            CertifiedKey::from_der(chain, key, &provider).map_err(|e| TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
                reason: e.to_string(),
            })?;
        Ok((certified, fingerprint(&cert_pem, &key_pem)))
    }

    /// The fingerprint of the files as they are now (unreadable: `None`).
    fn current_fingerprint(&self) -> Option<[u8; 32]> {
        let cert = std::fs::read(&self.cert).ok()?;
        let key = std::fs::read(&self.key).ok()?;
        Some(fingerprint(&cert, &key))
    }
}

/// What one reload attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Swapped,
    /// The files changed but the new pair is not usable: the old one is kept.
    Kept(String),
}

/// The leaf certificate's notAfter, as Unix seconds (0 when it cannot be read).
fn not_after(certified: &CertifiedKey) -> i64 {
    (certified.cert.first())
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .unwrap_or(0)
}

/// Warns when the certificate just loaded is expired or about to be: the API server would
/// refuse the handshake and, under `failurePolicy: Ignore`, admit pods without the sidecar.
fn warn_if_expiring(files: &CertFiles, not_after: i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if not_after <= now {
        tracing::warn!(cert = %files.cert.display(), "injector: the serving certificate has expired; the API server will not call the webhook");
    } else if not_after - now < EXPIRY_WARNING.as_secs() as i64 {
        let days = (not_after - now) / 86_400;
        tracing::warn!(cert = %files.cert.display(), days, "injector: the serving certificate expires soon");
    }
}

/// Serves the live certified key and swaps in a new one when the files change.
pub struct ReloadingCert {
    files: CertFiles,
    live: ArcSwap<CertifiedKey>,
    /// The live leaf's notAfter (Unix seconds), for the expiry metric.
    not_after: AtomicI64,
    /// The fingerprint of the bytes last tried, good or bad: the same bad bytes are reported
    /// once, not on every poll.
    last_seen: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReloadingCert {{ cert: {} }}", self.files.cert.display())
    }
}

impl ReloadingCert {
    /// Loads the pair; a missing or invalid one is an error naming the file.
    pub fn load(files: CertFiles) -> Result<Self, TlsError> {
        let (certified, seen) = files.load()?;
        let expiry = not_after(&certified);
        warn_if_expiring(&files, expiry);
        Ok(Self {
            files,
            live: ArcSwap::from_pointee(certified),
            not_after: AtomicI64::new(expiry),
            last_seen: Mutex::new(seen),
        })
    }

    /// The served leaf certificate's notAfter, as Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after.load(Ordering::Relaxed)
    }

    /// Re-reads the files; swaps in a changed, valid pair.
    pub fn reload(&self) -> Reload {
        let Some(now) = self.files.current_fingerprint() else {
            // Mid-swap or removed: keep serving; the next event or poll looks again.
            return Reload::Unchanged;
        };
        let Ok(mut last_seen) = self.last_seen.lock() else {
            return Reload::Unchanged;
        };
        if *last_seen == now {
            return Reload::Unchanged;
        }
        match self.files.load() {
            Ok((certified, seen)) => {
                let expiry = not_after(&certified);
                warn_if_expiring(&self.files, expiry);
                self.live.store(Arc::new(certified));
                self.not_after.store(expiry, Ordering::Relaxed);
                *last_seen = seen;
                tracing::info!(cert = %self.files.cert.display(), "injector: serving a new certificate");
                Reload::Swapped
            }
            Err(e) => {
                *last_seen = now;
                tracing::warn!(error = %e, "injector: the changed certificate files are not usable; still serving the previous certificate");
                Reload::Kept(e.to_string())
            }
        }
    }

    /// The directories to watch: those of the two files.
    fn directories(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = [&self.files.cert, &self.files.key]
            .iter()
            .map(|p| match p.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.dedup();
        dirs
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.live.load_full())
    }
}

/// Reloads `cert` on watcher events (debounced) and every [`POLL`], until the runtime stops.
/// Without a watcher (inotify limits), polling alone does it.
pub fn spawn_reloader(cert: Arc<ReloadingCert>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !matches!(event.kind, EventKind::Access(_)) {
                // Full: a reload is already due.
                let _ = tx.try_send(());
            }
        }
    });
    let watcher = match watcher {
        Ok(mut watcher) => {
            for dir in cert.directories() {
                if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %dir.display(), error = %e, "injector: cannot watch the certificate directory; polling it");
                }
            }
            Some(watcher)
        }
        Err(e) => {
            tracing::warn!(error = %e, "injector: no file watcher; polling the certificate files");
            None
        }
    };
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = rx.recv() => {
                    // Let the burst end before reading.
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(POLL) => {}
            }
            let cert = Arc::clone(&cert);
            // File reads off the async workers.
            let _ = tokio::task::spawn_blocking(move || cert.reload()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (cert.pem(), key.serialize_pem());
        std::fs::write(dir.join("tls.crt"), &c).unwrap();
        std::fs::write(dir.join("tls.key"), &k).unwrap();
        (c, k)
    }

    fn served(cert: &ReloadingCert) -> Vec<u8> {
        cert.live.load().cert[0].to_vec()
    }

    #[test]
    fn a_bad_new_pair_keeps_the_old_one_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let (first_cert, first_key) = pair(dir.path(), "a.example");
        let cert = ReloadingCert::load(files.clone()).unwrap();
        let first = served(&cert);
        let first_expiry = cert.not_after();
        assert!(first_expiry > 1_700_000_000, "{first_expiry}");
        assert_eq!(cert.reload(), Reload::Unchanged);
        // A truncated certificate: kept, and reported once.
        std::fs::write(&files.cert, &first_cert[..first_cert.len() / 2]).unwrap();
        assert!(matches!(cert.reload(), Reload::Kept(_)));
        assert_eq!(cert.reload(), Reload::Unchanged);
        assert_eq!(served(&cert), first);
        // A new certificate with the old key: a mismatch, kept.
        let (new_cert, _) = pair(dir.path(), "b.example");
        std::fs::write(&files.key, &first_key).unwrap();
        assert!(matches!(cert.reload(), Reload::Kept(e) if e.contains("tls.key")));
        // Both new: swapped.
        let _ = new_cert;
        pair(dir.path(), "c.example");
        assert_eq!(cert.reload(), Reload::Swapped);
        assert_ne!(served(&cert), first);
    }

    #[test]
    fn start_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let e = ReloadingCert::load(files.clone()).unwrap_err().to_string();
        assert!(e.contains("tls.crt"), "{e}");
        pair(dir.path(), "a.example");
        std::fs::write(&files.key, "not a key").unwrap();
        let e = ReloadingCert::load(files.clone()).unwrap_err().to_string();
        assert!(
            e.contains("tls.key") && e.contains("no PEM private key"),
            "{e}"
        );
        std::fs::write(&files.cert, "junk").unwrap();
        let e = ReloadingCert::load(files).unwrap_err().to_string();
        assert!(
            e.contains("tls.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
