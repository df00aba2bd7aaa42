//! `switchyard injector certs`: a private CA and the webhook's serving certificate for
//! `<service>.<namespace>.svc` (what the API server dials for a `service:` webhook), for clusters
//! without cert-manager. Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600), never following
//! a symlink planted at their names (a fresh `O_EXCL` temporary file renamed over the name, as
//! `switchyard ca init` does), and returns the `caBundle` (base64 of `ca.crt`) for the
//! MutatingWebhookConfiguration.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};

/// Default validity of the certificates, in days.
pub const DEFAULT_DAYS: u32 = 365;
/// Backdating, for API servers whose clocks run a little behind.
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{path} already exists (use --force to overwrite it)")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot create a certificate: {0}")]
    Mint(String),
    #[error("{0:?} is not a DNS name")]
    BadName(String),
}

/// What `injector certs` makes.
#[derive(Clone, Debug)]
pub struct CertsOptions {
    pub out: PathBuf,
    pub service: String,
    pub namespace: String,
    pub days: u32,
    pub force: bool,
    /// Extra DNS names in the serving certificate.
    pub dns: Vec<String>,
    /// IP addresses in the serving certificate (a loopback test client dials 127.0.0.1).
    pub ips: Vec<IpAddr>,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// base64 of the CA certificate's PEM: the webhook's `clientConfig.caBundle`.
    pub ca_bundle: String,
}

fn mint(e: impl std::fmt::Display) -> CertsError {
    CertsError::Mint(e.to_string())
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::from_secs(u64::from(days.max(1)) * 86_400);
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
}

/// The DNS names of the serving certificate: the Service's in-cluster names plus `extra`.
fn dns_names(o: &CertsOptions) -> Result<Vec<String>, CertsError> {
    let valid = |name: &str| {
        !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    for part in [&o.service, &o.namespace] {
        if !valid(part) || part.contains('.') {
            return Err(CertsError::BadName(part.chars().take(253).collect()));
        }
    }
    let svc = format!("{}.{}.svc", o.service, o.namespace);
    let mut names = vec![svc.clone(), format!("{svc}.cluster.local")];
    for name in &o.dns {
        if !valid(name) {
            return Err(CertsError::BadName(name.chars().take(253).collect()));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// `(ca.crt PEM, tls.crt PEM, tls.key PEM)`.
fn generate(o: &CertsOptions) -> Result<(String, String, String), CertsError> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(mint)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(mint)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "switchyard-injector CA");
    dn.push(DnType::OrganizationName, "Switchyard");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca, o.days);
    let ca_cert = ca.self_signed(&ca_key).map_err(mint)?;

    let names = dns_names(o)?;
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(mint)?;
    let mut leaf = CertificateParams::new(names.clone()).map_err(mint)?;
    leaf.subject_alt_names
        .extend(o.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].as_str());
    leaf.distinguished_name = dn;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut leaf, o.days);
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(mint)?;
    Ok((ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` into `o.out` (created if missing); refuses to
/// replace any of them (or a symlink in their place) unless `o.force`.
pub fn write_certs(o: &CertsOptions) -> Result<Written, CertsError> {
    let paths = [
        o.out.join("ca.crt"),
        o.out.join("tls.crt"),
        o.out.join("tls.key"),
    ];
    if !o.force {
        // `symlink_metadata`: a dangling symlink exists too.
        if let Some(p) = paths.iter().find(|p| p.symlink_metadata().is_ok()) {
            return Err(CertsError::Exists { path: p.clone() });
        }
    }
    let (ca, cert, key) = generate(o)?;
    std::fs::create_dir_all(&o.out).map_err(|e| CertsError::Write {
        path: o.out.clone(),
        reason: e.to_string(),
    })?;
    // The key first: if it cannot be written, no certificate without its key is left behind.
    write_file(&paths[2], key.as_bytes(), 0o600)?;
    write_file(&paths[1], cert.as_bytes(), 0o644)?;
    write_file(&paths[0], ca.as_bytes(), 0o644)?;
    Ok(Written {
        files: paths.to_vec(),
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()),
    })
}

/// Writes `path` as a new file of `mode`, never through a symlink (the CA's writer).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    crate::config::ca::write_new_file(path, bytes, mode).map_err(|e| CertsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn options(out: &Path) -> CertsOptions {
        CertsOptions {
            out: out.to_path_buf(),
            service: "switchyard-injector".into(),
            namespace: "switchyard-system".into(),
            days: DEFAULT_DAYS,
            force: false,
            dns: vec![],
            ips: vec!["127.0.0.1".parse().unwrap()],
        }
    }

    #[test]
    fn writes_a_ca_and_a_serving_pair_for_the_service() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        let written = write_certs(&options(&out)).unwrap();
        let key_mode = std::fs::metadata(out.join("tls.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let ca_pem = std::fs::read(out.join("ca.crt")).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&written.ca_bundle)
            .unwrap();
        assert_eq!(decoded, ca_pem);
        let leaf_pem = std::fs::read(out.join("tls.crt")).unwrap();
        let (_, leaf) = x509_parser::pem::parse_x509_pem(&leaf_pem).unwrap();
        let leaf = leaf.parse_x509().unwrap();
        let san = leaf.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
        for want in [
            "switchyard-injector.switchyard-system.svc",
            "switchyard-injector.switchyard-system.svc.cluster.local",
            "IPAddress(7f:00:00:01)",
        ] {
            assert!(
                names.iter().any(|n| n.contains(want)),
                "{want} not in {names:?}"
            );
        }
        // The pair loads as the server's.
        let files = super::super::tls::CertFiles {
            cert: out.join("tls.crt"),
            key: out.join("tls.key"),
        };
        files.load().unwrap();
    }

    #[test]
    fn never_overwrites_without_force_nor_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        std::fs::create_dir_all(&out).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, out.join("tls.key")).unwrap();
        let e = write_certs(&options(&out)).unwrap_err();
        assert!(matches!(e, CertsError::Exists { .. }), "{e}");
        let mut forced = options(&out);
        forced.force = true;
        write_certs(&forced).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let meta = std::fs::symlink_metadata(out.join("tls.key")).unwrap();
        assert!(meta.file_type().is_file());
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path());
        o.service = "a.b".into();
        assert!(matches!(write_certs(&o), Err(CertsError::BadName(_))));
        let mut o = options(dir.path());
        o.dns = vec!["bad name".into()];
        assert!(matches!(write_certs(&o), Err(CertsError::BadName(_))));
    }
}
