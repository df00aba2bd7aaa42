//! The local certificate authority of forward-proxy mode: `switchyard ca init` creates it
//! (ECDSA P-256), the config compiler loads and checks it, and the interceptor mints a
//! short-lived leaf certificate per intercepted host from it. It also holds the crate's trust
//! anchors for outgoing TLS — the bundled web PKI roots ([`bundled_roots`]) and the one
//! rustls root-store builder ([`root_store`]) — as the lowest layer every TLS client can use.
//!
//! The CA key is read once at load and lives only in memory: it is never logged, never part of
//! an error message (errors name the file, never its contents), and never served.
//!
//! Hardening (issue 17):
//! - `ca init` never follows a symlink planted at `ca.key`/`ca.pem`/`bundle.pem`: each file is
//!   written to a fresh temporary file in the same directory (`O_CREAT|O_EXCL`, which never
//!   follows a link) and renamed over the name, which replaces a symlink itself, not its target.
//!   Without `--force` any existing entry (a dangling symlink included) is refused.
//! - Loading refuses a `ca.key` that other users may read or write, or that its group may write.
//!   Group *read* is accepted: a Kubernetes Secret volume under a pod `fsGroup` is always
//!   group-readable (the kubelet ORs 0440 into every file's mode, whatever `defaultMode` says).
//! - The CA certificate carries RFC 5280 name constraints: only the provider domains it may
//!   intercept (the default intercept list plus `ca init --permit DOMAIN`) are permitted, and
//!   every IP address is excluded, so a leaked CA key cannot mint a certificate any client
//!   accepts for another site.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
    SerialNumber, PKCS_ECDSA_P256_SHA256,
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
/// The DNS subtrees a CA made by `switchyard ca init` permits: the domains of the default
/// `forward.intercept` list (`*.openai.azure.com` as its domain). `--permit` adds more.
pub const DEFAULT_PERMITTED: [&str; 4] = [
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "openai.azure.com",
];
/// Permission bits a `ca.key` must not have: any for other users, write for the group.
const KEY_FORBIDDEN_MODE: u32 = 0o027;

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
    #[error("{path} has mode {mode:04o}: a CA key must not be readable or writable by other users or writable by its group (chmod 600, or defaultMode 0400 on a Secret volume)")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("--permit {0:?} is not a DNS domain name")]
    BadPermit(String),
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
    /// The DNS subtrees the certificate's name constraints permit; `None`: unconstrained (a CA
    /// made before constraints existed).
    permitted: Option<Vec<String>>,
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

/// Reads the key file, refusing it when its mode lets other users read it (checked on the open
/// file, so a swap between the check and the read changes nothing).
fn read_key(path: &Path) -> Result<Vec<u8>, CaError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let err = |e: std::io::Error| CaError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mode = file.metadata().map_err(err)?.permissions().mode() & 0o7777;
    if mode & KEY_FORBIDDEN_MODE != 0 {
        return Err(CaError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(err)?;
    Ok(bytes)
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
        let key_pem = read_key(key_path)?;
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
        let params = CertificateParams::from_ca_cert_der(&cert_der).map_err(|_| bad_cert())?;
        let permitted = params.name_constraints.as_ref().map(|nc| {
            nc.permitted_subtrees
                .iter()
                .filter_map(|s| match s {
                    GeneralSubtree::DnsName(d) => {
                        Some(d.trim_start_matches('.').to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect::<Vec<String>>()
        });
        // No DNS subtree permitted means DNS names are unconstrained (RFC 5280 §4.2.1.10).
        let permitted = permitted.filter(|p| !p.is_empty());
        if permitted.is_none() {
            tracing::warn!(
                cert = %cert_path.display(),
                "the forward-proxy CA has no name constraints: a leaked key could sign for any site; re-create it with `switchyard ca init`"
            );
        }
        let issuer = params.self_signed(&key).map_err(mint_error)?;
        let fingerprint = Sha256::digest(cert_der.as_ref()).into();
        Ok(LocalCa {
            cert_der: cert_der.into_owned(),
            issuer,
            key,
            fingerprint,
            permitted,
        })
    }

    /// Whether the certificate's name constraints permit leaves for every host `pattern`
    /// matches (always, for an unconstrained CA; never, for an IP address under constraints).
    pub fn permits(&self, pattern: &super::hosts::HostPattern) -> bool {
        use super::hosts::HostPattern;
        let Some(permitted) = &self.permitted else {
            return true;
        };
        let name = match pattern {
            HostPattern::Exact(h) if h.parse::<std::net::IpAddr>().is_ok() => return false,
            HostPattern::Exact(h) => h.as_str(),
            HostPattern::Subdomains(suffix) => &suffix[1..],
        };
        permitted.iter().any(|d| {
            name == d
                || (name.len() > d.len()
                    && name.ends_with(d.as_str())
                    && name.as_bytes()[name.len() - d.len() - 1] == b'.')
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

/// The name constraints of a new CA: `domains` (and their subdomains) permitted, every IPv4 and
/// IPv6 address excluded.
fn name_constraints(domains: &[String]) -> NameConstraints {
    NameConstraints {
        permitted_subtrees: domains
            .iter()
            .map(|d| GeneralSubtree::DnsName(d.clone()))
            .collect(),
        excluded_subtrees: vec![
            GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])),
            GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
        ],
    }
}

/// The domains a new CA permits: [`DEFAULT_PERMITTED`] plus `extra` (`--permit`; a leading
/// `*.` is dropped, as a constraint covers subdomains anyway), normalised and deduplicated.
pub fn permitted_domains(extra: &[String]) -> Result<Vec<String>, CaError> {
    let mut out: Vec<String> = DEFAULT_PERMITTED.iter().map(|d| d.to_string()).collect();
    for text in extra {
        let t = text.trim();
        let d = super::hosts::normalize(t.strip_prefix("*.").unwrap_or(t))
            .filter(|d| d.parse::<std::net::IpAddr>().is_err() && d.contains('.'))
            .ok_or_else(|| CaError::BadPermit(t.chars().take(256).collect()))?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// A new CA: `(certificate PEM, private key PEM)`, ECDSA P-256, valid for `days`, allowed to
/// sign leaf certificates only (path length 0) and only for `permitted` domains (and never for
/// an IP address). An empty `permitted` leaves DNS names unconstrained: `ca init` always passes
/// [`permitted_domains`].
pub fn generate(days: u32, permitted: &[String]) -> Result<(String, String), CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(mint_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(mint_error)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Switchyard local CA");
    dn.push(DnType::OrganizationName, "Switchyard");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.name_constraints = Some(name_constraints(permitted));
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
    for root in bundled_roots() {
        let pem = pem::Pem::new("CERTIFICATE", root.as_ref().to_vec());
        out.push_str(&pem::encode_config(&pem, lf));
    }
    out.push_str(ca_pem);
    out
}

/// The bundled Mozilla (web PKI) roots, so a distroless image needs no system store: the one
/// place the crate takes public trust anchors from — upstream connections
/// (`upstream::tls`), the OTLP exporter ([`root_store`]) and [`bundle`].
pub fn bundled_roots() -> &'static [CertificateDer<'static>] {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
}

/// Every certificate in PEM text; blocks that do not parse are skipped.
pub fn pem_certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// The rustls root store of a TLS client: `certs`, plus the [`bundled_roots`] when `bundled`.
/// Certificates rustls cannot use as a trust anchor are skipped.
pub fn root_store(certs: &[CertificateDer<'static>], bundled: bool) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let bundled = if bundled { bundled_roots() } else { &[] };
    roots.add_parsable_certificates(certs.iter().chain(bundled).cloned());
    roots
}

/// `switchyard ca init --out DIR` with the default permitted domains (see [`init_dir_with`]).
pub fn init_dir(out: &Path, force: bool, days: u32) -> Result<Vec<PathBuf>, CaError> {
    init_dir_with(out, force, days, &[])
}

/// `switchyard ca init --out DIR [--permit D]…`: writes `ca.pem`, `ca.key` (mode 0600) and
/// `bundle.pem`; refuses to overwrite any of them (or a symlink in their place) unless `force`,
/// and even then replaces the directory entry, never a symlink's target. Returns the paths
/// written.
pub fn init_dir_with(
    out: &Path,
    force: bool,
    days: u32,
    permit: &[String],
) -> Result<Vec<PathBuf>, CaError> {
    let paths = [
        out.join("ca.pem"),
        out.join("ca.key"),
        out.join("bundle.pem"),
    ];
    if !force {
        // `symlink_metadata`: a dangling symlink exists too.
        if let Some(p) = paths.iter().find(|p| p.symlink_metadata().is_ok()) {
            return Err(CaError::Exists { path: p.clone() });
        }
    }
    let permitted = permitted_domains(permit)?;
    std::fs::create_dir_all(out).map_err(|e| CaError::Write {
        path: out.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (cert_pem, key_pem) = generate(days, &permitted)?;
    // The key first: if it cannot be written, no certificate without a key is left behind.
    write_file(&paths[1], key_pem.as_bytes(), 0o600)?;
    write_file(&paths[0], cert_pem.as_bytes(), 0o644)?;
    write_file(&paths[2], bundle(&cert_pem).as_bytes(), 0o644)?;
    Ok(paths.to_vec())
}

/// Writes `path` as a new file of `mode`: a fresh temporary file beside it (`create_new`: never
/// an existing file or a symlink), then renamed over `path` (a symlink there is replaced, its
/// target untouched). Also `switchyard injector certs`' writer.
pub fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have removed bits: set exactly `mode`.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    write_new_file(path, bytes, mode).map_err(|e| CaError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Issue 17 item 10: `ca init --force` followed a symlink at `ca.key`.
    #[test]
    fn init_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let victim = d.join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        set_mode(&victim, 0o644);
        let out = d.join("ca");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("ca.key")).unwrap();
        // Without --force: refused (the symlink exists), the target untouched.
        assert!(matches!(
            init_dir(&out, false, 30),
            Err(CaError::Exists { .. })
        ));
        // A dangling symlink counts as existing too.
        std::os::unix::fs::symlink(d.join("nowhere"), out.join("ca.pem")).unwrap();
        assert!(matches!(
            init_dir(&out, false, 30),
            Err(CaError::Exists { .. })
        ));
        // With --force: the links are replaced by regular files; their targets are untouched.
        init_dir(&out, true, 30).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!d.join("nowhere").exists());
        for name in ["ca.key", "ca.pem", "bundle.pem"] {
            let meta = std::fs::symlink_metadata(out.join(name)).unwrap();
            assert!(meta.file_type().is_file(), "{name}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let victim_mode = std::fs::metadata(&victim).unwrap().permissions().mode();
        assert_eq!(victim_mode & 0o777, 0o644);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        LocalCa::load(&out.join("ca.pem"), &out.join("ca.key")).unwrap();
    }

    /// Issue 17 item 10: a world-readable `ca.key` loaded silently.
    #[test]
    fn a_key_other_users_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        init_dir(dir.path(), false, 30).unwrap();
        let (pem, key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        for mode in [0o644, 0o604, 0o660, 0o602, 0o666] {
            set_mode(&key, mode);
            let err = LocalCa::load(&pem, &key).unwrap_err();
            assert!(
                matches!(err, CaError::KeyPermissions { .. }),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("ca.key"), "{err}");
        }
        // 0600, 0400, and 0440 (a Secret volume under an fsGroup) load.
        for mode in [0o600, 0o400, 0o440] {
            set_mode(&key, mode);
            LocalCa::load(&pem, &key).unwrap();
        }
    }

    fn verify(ca: &LocalCa, ca_pem: &[u8], host: &str) -> Result<(), rustls::Error> {
        use rustls::client::danger::ServerCertVerifier;
        let roots = root_store(&pem_certificates(ca_pem), false);
        assert!(!roots.is_empty());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = ca.mint(host).unwrap();
        let name = rustls_pki_types::ServerName::try_from(host.to_string()).unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &[],
                &name,
                &[],
                rustls_pki_types::UnixTime::now(),
            )
            .map(|_| ())
    }

    /// Issue 17 item 10: the CA had no name constraints, so its key could sign for any site.
    #[test]
    fn the_ca_is_constrained_to_the_provider_domains() {
        let dir = tempfile::tempdir().unwrap();
        let permits = [
            "*.internal.example".to_string(),
            "llm.corp.example".to_string(),
        ];
        init_dir_with(dir.path(), false, 30, &permits).unwrap();
        let (pem, key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        let ca = LocalCa::load(&pem, &key).unwrap().0;
        let ca_pem = std::fs::read(&pem).unwrap();
        for ok in [
            "api.openai.com",
            "api.anthropic.com",
            "generativelanguage.googleapis.com",
            "my-res.openai.azure.com",
            "a.internal.example",
            "llm.corp.example",
        ] {
            verify(&ca, &ca_pem, ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for refused in [
            "example.com",
            "evilopenai.com",
            "api.openai.com.evil.example",
            "127.0.0.1",
        ] {
            let err = verify(&ca, &ca_pem, refused).unwrap_err();
            assert!(
                format!("{err:?}").contains("NameConstraint"),
                "{refused}: {err:?}"
            );
        }
        use crate::config::hosts::HostPattern;
        let p = |t: &str| HostPattern::parse(t).unwrap();
        assert!(ca.permits(&p("api.openai.com")));
        assert!(ca.permits(&p("*.openai.azure.com")));
        assert!(ca.permits(&p("*.internal.example")));
        assert!(!ca.permits(&p("example.com")));
        assert!(!ca.permits(&p("xopenai.azure.com")));
        assert!(!ca.permits(&p("127.0.0.1")));
        for bad in ["*", "1.2.3.4", "com", "a b"] {
            assert!(
                matches!(
                    permitted_domains(&[bad.to_string()]),
                    Err(CaError::BadPermit(_))
                ),
                "{bad}"
            );
        }
    }

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
        // The certificate (mode 0644) as the key: refused for its mode before it is parsed.
        let err = LocalCa::load(&a_pem, &a_pem).unwrap_err();
        assert!(matches!(err, CaError::KeyPermissions { .. }), "{err}");
        let pem_as_key = d.join("pem-as-key");
        std::fs::copy(&a_pem, &pem_as_key).unwrap();
        set_mode(&pem_as_key, 0o600);
        let err = LocalCa::load(&a_pem, &pem_as_key).unwrap_err();
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
