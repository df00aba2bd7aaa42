//! Which certificate authorities an HTTPS upstream is verified against: the bundled Mozilla
//! (web PKI) roots ([`ca::bundled_roots`], the crate's one source of them), plus a provider's
//! own `ca_file` for private endpoints, as pingora's CA list. Built once per file and shared by
//! every connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use pingora::protocols::tls::CaType;
use pingora::utils::tls::WrappedX509;

use crate::config::ca;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read CA file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("CA file {path} holds no usable certificate")]
    Empty { path: PathBuf },
    #[error("cannot set up the TLS connector: {0}")]
    Connector(String),
}

/// Caches the CA lists handed to pingora peers.
#[derive(Default)]
pub struct TrustRoots {
    bundled: OnceLock<Arc<CaType>>,
    with_file: Mutex<HashMap<PathBuf, Arc<CaType>>>,
}

fn wrap(der: &[u8]) -> Option<WrappedX509> {
    WrappedX509::try_new(der.to_vec(), |raw| {
        x509_parser::parse_x509_certificate(raw).map(|(_, cert)| cert)
    })
    .ok()
}

fn bundled_certs() -> Vec<WrappedX509> {
    ca::bundled_roots()
        .iter()
        .filter_map(|c| wrap(c.as_ref()))
        .collect()
}

impl TrustRoots {
    pub fn new() -> Self {
        Self::default()
    }

    /// The roots for a provider (its `ca_file`'s certificates, then the bundled ones) as PEM,
    /// only those rustls takes as trust anchors: pingora's connector reads a CA file and
    /// refuses all of it for one certificate it cannot add.
    pub fn pem(&self, ca_file: Option<&Path>) -> Result<Vec<u8>, TrustError> {
        let mut certs = Vec::new();
        if let Some(path) = ca_file {
            let text = std::fs::read(path).map_err(|e| TrustError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            certs = ca::pem_certificates(&text);
            if certs.is_empty() {
                return Err(TrustError::Empty {
                    path: path.to_path_buf(),
                });
            }
        }
        let mut probe = rustls::RootCertStore::empty();
        let mut out = Vec::with_capacity(256 * 1024);
        for cert in certs.iter().chain(ca::bundled_roots()) {
            if probe.add(cert.clone()).is_ok() {
                let block = pem::Pem::new("CERTIFICATE", cert.to_vec());
                out.extend_from_slice(pem::encode(&block).as_bytes());
            }
        }
        Ok(out)
    }

    /// The roots for a provider: bundled, plus `ca_file` when given.
    pub fn for_provider(&self, ca_file: Option<&Path>) -> Result<Arc<CaType>, TrustError> {
        let Some(path) = ca_file else {
            return Ok(self
                .bundled
                .get_or_init(|| Arc::from(bundled_certs().into_boxed_slice()))
                .clone());
        };
        if let Some(found) = self
            .with_file
            .lock()
            .ok()
            .and_then(|m| m.get(path).cloned())
        {
            return Ok(found);
        }
        let pem = std::fs::read(path).map_err(|e| TrustError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut certs: Vec<WrappedX509> = ca::pem_certificates(&pem)
            .iter()
            .filter_map(|c| wrap(c.as_ref()))
            .collect();
        if certs.is_empty() {
            return Err(TrustError::Empty {
                path: path.to_path_buf(),
            });
        }
        certs.extend(bundled_certs());
        let list: Arc<CaType> = Arc::from(certs.into_boxed_slice());
        if let Ok(mut m) = self.with_file.lock() {
            m.insert(path.to_path_buf(), list.clone());
        }
        Ok(list)
    }
}

/// A CA list as a file for pingora's connector, which reads its roots from a path: an
/// anonymous in-memory file on Linux (nothing written to disk, works on a read-only root), else a
/// private temporary file. Closed (or removed) when dropped; the connector has read it by then.
pub struct RootsFile {
    path: PathBuf,
    _held: Option<std::fs::File>,
    remove: bool,
}

impl RootsFile {
    pub fn write(pem: &[u8]) -> std::io::Result<RootsFile> {
        #[cfg(target_os = "linux")]
        if let Some(file) = Self::in_memory(pem) {
            return Ok(file);
        }
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("switchyard-roots-{}-{n}.pem", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(pem)?;
        Ok(RootsFile {
            path,
            _held: None,
            remove: true,
        })
    }

    #[cfg(target_os = "linux")]
    fn in_memory(pem: &[u8]) -> Option<RootsFile> {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        // SAFETY: a NUL-terminated name and valid flags; the descriptor is owned by the File.
        let fd = unsafe { libc::memfd_create(c"switchyard-roots".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.write_all(pem).ok()?;
        let path = PathBuf::from(format!("/proc/self/fd/{fd}"));
        // Without /proc (a minimal sandbox) the path cannot be opened: use a file instead.
        std::fs::metadata(&path).ok()?;
        Some(RootsFile {
            path,
            _held: Some(file),
            remove: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootsFile {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_roots_are_many_and_a_bad_file_is_an_error() {
        let roots = TrustRoots::new();
        assert!(roots.for_provider(None).unwrap().len() > 100);
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a pem").unwrap();
        assert!(matches!(
            roots.for_provider(Some(&bad)),
            Err(TrustError::Empty { .. })
        ));
        assert!(matches!(
            roots.for_provider(Some(&dir.path().join("missing.pem"))),
            Err(TrustError::Read { .. })
        ));
        assert!(matches!(
            roots.pem(Some(&bad)),
            Err(TrustError::Empty { .. })
        ));
    }

    #[test]
    fn the_roots_file_holds_every_usable_root() {
        let pem = TrustRoots::new().pem(None).unwrap();
        let file = RootsFile::write(&pem).unwrap();
        let read = std::fs::read(file.path()).unwrap();
        assert_eq!(read, pem);
        assert!(ca::pem_certificates(&read).len() > 100);
    }
}
