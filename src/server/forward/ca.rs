//! The local certificate authority of forward-proxy mode: `switchyard ca init` creates it
//! (ECDSA P-256), the config compiler loads and checks it, and the interceptor mints a
//! short-lived leaf certificate per intercepted host from it.
//!
//! The CA key is read once at load and lives only in memory: it is never logged, never part of
//! an error message (errors name the file, never its contents), and never served.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// How long a minted leaf certificate is valid.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Leaves are backdated by this much, for clients whose clocks run a little behind.
const BACKDATE: Duration = Duration::from_secs(3600);
/// Default validity of a CA made by `switchyard ca init`.
pub const DEFAULT_CA_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: the certificate cannot be parsed")]
    BadCertificate { path: PathBuf },
    #[error("{path} is not a CA certificate (basicConstraints CA:TRUE is missing)")]
    NotCa { path: PathBuf },
    #[error("{path}: the CA certificate is not valid now (expired or not yet valid)")]
    Expired { path: PathBuf },
    #[error("{path} holds no usable private key (an unencrypted PKCS#8 PEM \"PRIVATE KEY\" is expected)")]
    BadKey { path: PathBuf },
    #[error("{key} is not the private key of the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot create a certificate: {0}")]
    Mint(String),
    #[error("{path} already exists (use --force to overwrite it)")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// A loaded CA: its certificate as served in chains, and what signing needs.
pub struct LocalCa {
    cert_der: CertificateDer<'static>,
    /// The CA's own parameters (subject, key identifier) re-signed in memory: rcgen takes the
    /// issuer's name and key identifier from a `Certificate`.
    issuer: rcgen::Certificate,
    key: KeyPair,
    /// SHA-256 of the certificate: identifies this CA in the leaf cache across reloads.
    pub fingerprint: [u8; 32],
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LocalCa {{ fingerprint: {}, key: [redacted] }}",
            hex::encode(&self.fingerprint[..8])
        )
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    std::fs::read(path).map_err(|e| CaError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn mint_error(e: impl fmt::Display) -> CaError {
    CaError::Mint(e.to_string())
}

fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl LocalCa {
    /// Loads and checks the CA files: a CA certificate valid now and its matching private key.
    /// Returns the CA and the bytes read (they feed the config hash).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<(LocalCa, Vec<u8>), CaError> {
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let ca = Self::from_pem(&cert_pem, cert_path, &key_pem, key_path)?;
        let mut bytes = cert_pem;
        bytes.extend_from_slice(&key_pem);
        Ok((ca, bytes))
    }

    fn from_pem(
        cert_pem: &[u8],
        cert_path: &Path,
        key_pem: &[u8],
        key_path: &Path,
    ) -> Result<LocalCa, CaError> {
        let cert_der = CertificateDer::pem_slice_iter(cert_pem)
            .next()
            .and_then(|c| c.ok())
            .ok_or_else(|| CaError::NoCertificate {
                path: cert_path.to_path_buf(),
            })?;
        let bad_cert = || CaError::BadCertificate {
            path: cert_path.to_path_buf(),
        };
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der).map_err(|_| bad_cert())?;
        let is_ca = matches!(parsed.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        if !is_ca {
            return Err(CaError::NotCa {
                path: cert_path.to_path_buf(),
            });
        }
        if !parsed.validity().is_valid() {
            return Err(CaError::Expired {
                path: cert_path.to_path_buf(),
            });
        }
        let bad_key = || CaError::BadKey {
            path: key_path.to_path_buf(),
        };
        let key_text = std::str::from_utf8(key_pem).map_err(|_| bad_key())?;
        let key = KeyPair::from_pem(key_text).map_err(|_| bad_key())?;
        if key.public_key_der() != parsed.public_key().raw {
            return Err(CaError::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
        let issuer = CertificateParams::from_ca_cert_der(&cert_der)
            .map_err(|_| bad_cert())?
            .self_signed(&key)
            .map_err(mint_error)?;
        let fingerprint = Sha256::digest(cert_der.as_ref()).into();
        Ok(LocalCa {
            cert_der: cert_der.into_owned(),
            issuer,
            key,
            fingerprint,
        })
    }

    /// A leaf certificate for `host` (a normalised DNS name or IP), valid for
    /// [`LEAF_LIFETIME`], signed by this CA, with its freshly generated key; the chain served is
    /// the leaf then the CA.
    pub fn mint(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(mint_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        let now = now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + LEAF_LIFETIME;
        let mut serial: [u8; 16] = rand::random();
        serial[0] &= 0x7f; // a positive INTEGER
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(mint_error)?;
        let leaf = params
            .signed_by(&leaf_key, &self.issuer, &self.key)
            .map_err(mint_error)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signer =
            rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(mint_error)?;
        Ok(Arc::new(CertifiedKey::new(
            vec![leaf.der().clone(), self.cert_der.clone()],
            signer,
        )))
    }
}

/// A new CA: `(certificate PEM, private key PEM)`, ECDSA P-256, valid for `days`, allowed to
/// sign leaf certificates only (path length 0).
pub fn generate(days: u32) -> Result<(String, String), CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(mint_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(mint_error)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Switchyard local CA");
    dn.push(DnType::OrganizationName, "Switchyard");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::from_secs(u64::from(days.max(1)) * 86_400);
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(mint_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// PEM of the bundled Mozilla roots followed by `ca_pem`: a bundle for clients whose CA setting
/// replaces the system store (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`), so hosts that are tunnelled
/// (real certificates) still verify.
pub fn bundle(ca_pem: &str) -> String {
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let mut out = String::with_capacity(250 * 1024);
    for root in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let pem = pem::Pem::new("CERTIFICATE", root.as_ref().to_vec());
        out.push_str(&pem::encode_config(&pem, lf));
    }
    out.push_str(ca_pem);
    out
}

/// `switchyard ca init --out DIR`: writes `ca.pem`, `ca.key` (mode 0600) and `bundle.pem`;
/// refuses to overwrite any of them unless `force`. Returns the paths written.
pub fn init_dir(out: &Path, force: bool, days: u32) -> Result<Vec<PathBuf>, CaError> {
    let paths = [
        out.join("ca.pem"),
        out.join("ca.key"),
        out.join("bundle.pem"),
    ];
    if !force {
        if let Some(p) = paths.iter().find(|p| p.exists()) {
            return Err(CaError::Exists { path: p.clone() });
        }
    }
    std::fs::create_dir_all(out).map_err(|e| CaError::Write {
        path: out.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (cert_pem, key_pem) = generate(days)?;
    // The key first: if it cannot be written, no certificate without a key is left behind.
    write_file(&paths[1], key_pem.as_bytes(), 0o600)?;
    write_file(&paths[0], cert_pem.as_bytes(), 0o644)?;
    write_file(&paths[2], bundle(&cert_pem).as_bytes(), 0o644)?;
    Ok(paths.to_vec())
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |e: std::io::Error| CaError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // An existing file keeps its mode on open: set it.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_a_loadable_ca_with_a_private_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let written = init_dir(dir.path(), false, 30).unwrap();
        assert_eq!(written.len(), 3);
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            init_dir(dir.path(), false, 30),
            Err(CaError::Exists { .. })
        ));
        std::fs::set_permissions(
            dir.path().join("ca.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        init_dir(dir.path(), true, 30).unwrap();
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (ca, _) =
            LocalCa::load(&dir.path().join("ca.pem"), &dir.path().join("ca.key")).unwrap();
        assert!(!format!("{ca:?}").contains("PRIVATE"));
        let leaf = ca.mint("api.openai.com").unwrap();
        assert_eq!(leaf.cert.len(), 2);
        let bundle = std::fs::read_to_string(dir.path().join("bundle.pem")).unwrap();
        let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        assert!(bundle.ends_with(&ca_pem) && bundle.matches("BEGIN CERTIFICATE").count() > 100);
    }

    #[test]
    fn bad_files_are_named_errors_without_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        init_dir(&d.join("a"), false, 30).unwrap();
        init_dir(&d.join("b"), false, 30).unwrap();
        let (a_pem, a_key) = (d.join("a/ca.pem"), d.join("a/ca.key"));
        let b_key = d.join("b/ca.key");
        let err = LocalCa::load(&a_pem, &b_key).unwrap_err();
        assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
        let err = LocalCa::load(&a_pem, &d.join("missing.key")).unwrap_err();
        assert!(err.to_string().contains("missing.key"), "{err}");
        // The key file given as the certificate, and the certificate as the key.
        let err = LocalCa::load(&a_key, &a_key).unwrap_err();
        assert!(matches!(err, CaError::NoCertificate { .. }), "{err}");
        let err = LocalCa::load(&a_pem, &a_pem).unwrap_err();
        assert!(matches!(err, CaError::BadKey { .. }), "{err}");
        let key_text = std::fs::read_to_string(&a_key).unwrap();
        for e in [err.to_string(), format!("{err:?}")] {
            assert!(
                !e.contains("PRIVATE KEY-----") && !e.contains(key_text.lines().nth(1).unwrap())
            );
        }
        // A leaf is not a CA.
        let ca = LocalCa::load(&a_pem, &a_key).unwrap().0;
        let leaf = ca.mint("example.com").unwrap();
        let leaf_pem = pem::encode(&pem::Pem::new(
            "CERTIFICATE",
            leaf.cert[0].as_ref().to_vec(),
        ));
        std::fs::write(d.join("leaf.pem"), leaf_pem).unwrap();
        let err = LocalCa::load(&d.join("leaf.pem"), &a_key).unwrap_err();
        assert!(matches!(err, CaError::NotCa { .. }), "{err}");
    }
}
