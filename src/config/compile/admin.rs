//! `admin:`: the admin port's allowed Host names and its token file.

use sha2::Digest;

use super::compiler::*;
use crate::config::schema::*;
use crate::config::secrets;
use crate::config::snapshot::*;

impl Compiler<'_> {
    /// `admin:`: allowed Host names (checked to be plain DNS names) and the token file (read,
    /// hashed into the config hash and watched, so a rotated token is picked up on reload).
    pub(super) fn admin(&mut self, spec: &AdminSpec) -> AdminSettings {
        let mut allowed_hosts = Vec::new();
        for (i, host) in spec.allowed_hosts.iter().flatten().enumerate() {
            let host = host.trim().to_ascii_lowercase();
            let valid = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if valid {
                allowed_hosts.push(host);
            } else {
                self.error(
                    format!("admin.allowed_hosts[{i}]"),
                    "not a host name (letters, digits, '-' and '.'; no port)",
                );
            }
        }
        let token = spec.token_file.as_ref().and_then(|file| {
            let resolved = secrets::resolve_path(file, self.base_dir);
            match secrets::read_secret_file(&resolved) {
                Ok((token, bytes)) if token.len() >= MIN_ADMIN_TOKEN_CHARS => {
                    self.hasher.update(&bytes);
                    self.source_files.push(resolved);
                    Some(Secret::new(token))
                }
                Ok(_) => {
                    self.error(
                        "admin.token_file",
                        format!("the token must have at least {MIN_ADMIN_TOKEN_CHARS} characters"),
                    );
                    None
                }
                Err(e) => {
                    self.absent("admin.token_file", e);
                    None
                }
            }
        });
        AdminSettings {
            allowed_hosts,
            token,
        }
    }
}
