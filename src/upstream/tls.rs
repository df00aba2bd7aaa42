//! Which certificate authorities an HTTPS upstream is verified against: the bundled Mozilla
//! (web PKI) roots, so a distroless image needs no system store, plus a provider's own `ca_file`
//! for private endpoints. Built once per file and shared by every connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use pingora::protocols::tls::CaType;
use pingora::utils::tls::WrappedX509;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read CA file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("CA file {path} holds no usable certificate")]
    Empty { path: PathBuf },
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
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|c| wrap(c.as_ref()))
        .collect()
}

impl TrustRoots {
    pub fn new() -> Self {
        Self::default()
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
        let mut certs: Vec<WrappedX509> = CertificateDer::pem_slice_iter(&pem)
            .filter_map(|c| c.ok())
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
    }
}
