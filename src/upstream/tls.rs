//! Which certificate authorities an HTTPS upstream is verified against: the bundled Mozilla
//! (web PKI) roots ([`ca::bundled_roots`], the crate's one source of them), plus a provider's
//! own `ca_file` for private endpoints, handed to pingora as a CA file (or, as a fallback, a
//! per-peer CA list).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pingora::protocols::tls::CaType;
use pingora::utils::tls::WrappedX509;
use rustls_pki_types::CertificateDer;

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

/// The certificates a provider's connections trust: its `ca_file`'s, then the bundled roots —
/// only those rustls takes as trust anchors (pingora's connector refuses a whole CA file for one
/// certificate it cannot add). Read once per trust set: the upstream pools keep the result.
pub struct TrustRoots {
    certs: Vec<CertificateDer<'static>>,
}

impl TrustRoots {
    pub fn load(ca_file: Option<&Path>) -> Result<TrustRoots, TrustError> {
        let mut from_file = Vec::new();
        if let Some(path) = ca_file {
            let text = std::fs::read(path).map_err(|e| TrustError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            from_file = ca::pem_certificates(&text);
            if from_file.is_empty() {
                return Err(TrustError::Empty {
                    path: path.to_path_buf(),
                });
            }
        }
        let mut probe = rustls::RootCertStore::empty();
        let certs = from_file
            .into_iter()
            .chain(ca::bundled_roots().iter().cloned())
            .filter(|cert| probe.add(cert.clone()).is_ok())
            .collect();
        Ok(TrustRoots { certs })
    }

    /// As PEM, for pingora's connector (which reads its roots from a file).
    pub fn pem(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 * 1024);
        for cert in &self.certs {
            let block = pem::Pem::new("CERTIFICATE", cert.to_vec());
            out.extend_from_slice(pem::encode(&block).as_bytes());
        }
        out
    }

    /// As pingora's per-peer CA list (the fallback when the connector cannot take a file).
    pub fn ca_list(&self) -> Arc<CaType> {
        let wrapped: Vec<WrappedX509> = self
            .certs
            .iter()
            .filter_map(|der| {
                WrappedX509::try_new(der.to_vec(), |raw| {
                    x509_parser::parse_x509_certificate(raw).map(|(_, cert)| cert)
                })
                .ok()
            })
            .collect();
        Arc::from(wrapped.into_boxed_slice())
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
        let roots = TrustRoots::load(None).unwrap();
        assert!(roots.ca_list().len() > 100);
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a pem").unwrap();
        assert!(matches!(
            TrustRoots::load(Some(&bad)),
            Err(TrustError::Empty { .. })
        ));
        assert!(matches!(
            TrustRoots::load(Some(&dir.path().join("missing.pem"))),
            Err(TrustError::Read { .. })
        ));
    }

    #[test]
    fn the_roots_file_holds_every_usable_root() {
        let roots = TrustRoots::load(None).unwrap();
        let pem = roots.pem();
        let file = RootsFile::write(&pem).unwrap();
        let read = std::fs::read(file.path()).unwrap();
        assert_eq!(read, pem);
        assert_eq!(ca::pem_certificates(&read).len(), roots.ca_list().len());
        assert!(ca::pem_certificates(&read).len() > 100);
    }
}
