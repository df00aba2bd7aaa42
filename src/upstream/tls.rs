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
