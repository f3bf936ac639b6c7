//! `--web-config FILE`: how the HTTP endpoint is protected, in the YAML format of Prometheus's
//! exporter-toolkit (`web-config.yml`), so the hospital's Prometheus scrape config
//! (`scheme: https`, `basic_auth`, `authorization`/`bearer_token_file`, `tls_config`) applies
//! unchanged:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: medtap.crt        # PEM certificate chain, leaf first
//!   key_file: medtap.key         # PEM private key (PKCS#8, PKCS#1 or SEC1)
//!   min_version: TLS12           # optional: TLS12 (default) or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...       # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\n')
//! bearer_token_file: token       # optional: a file holding one token (medtap extension)
//! ```
//!
//! Relative paths are relative to the web config file's folder, as in exporter-toolkit. Every
//! problem (unreadable file, unknown key, bad certificate or key, key not matching the
//! certificate, malformed bcrypt hash, empty token) is a [`ConfigError`] naming the file (and the
//! line for YAML problems): exit code 2 before capture starts.
//!
//! When users or a token are configured, every route requires one of them (`/healthz`
//! included: it says whether capture is healthy, and an exporter endpoint is all or nothing);
//! anything else gets `401` with `WWW-Authenticate: Basic realm="medtap"`. Passwords are checked
//! with bcrypt on tokio's blocking pool, never on the packet path, and are never logged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebConfig {
    tls_server_config: Option<FileTls>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    bearer_token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    min_version: Option<String>,
}

/// The validated web configuration.
#[derive(Clone)]
pub struct WebConfig {
    /// TLS server configuration (certificate and key loaded and checked), when TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub auth: Arc<Auth>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.auth.users.len())
            .field("token", &self.auth.token.is_some())
            .finish()
    }
}

/// Who may use the endpoint. Empty = anyone (no `basic_auth_users`, no token).
#[derive(Default)]
pub struct Auth {
    users: BTreeMap<String, String>,
    token: Option<Vec<u8>>,
    /// A bcrypt hash (at the users' cost) checked for unknown users, so that an unknown user
    /// costs the same time as a wrong password.
    dummy: String,
}

impl Auth {
    /// Whether any credential is required.
    pub fn required(&self) -> bool {
        !self.users.is_empty() || self.token.is_some()
    }

    /// Check an `Authorization` header value. Blocking (bcrypt): call it off the async runtime.
    pub fn check(&self, header: Option<&[u8]>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(h) = header else { return false };
        let Ok(h) = std::str::from_utf8(h) else {
            return false;
        };
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return match &self.token {
                Some(t) => constant_time_eq(t, rest.as_bytes()),
                None => false,
            };
        }
        if !scheme.eq_ignore_ascii_case("basic") || self.users.is_empty() {
            return false;
        }
        let Some(decoded) = base64_decode(rest) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return false;
        };
        match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, &self.dummy);
                false
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 (RFC 4648, with or without padding); `None` when malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 || s.len() > 8192 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Load and check `--web-config FILE`.
pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{shown}: cannot read: {e}")))?;
    let file: FileWebConfig = if text.trim().is_empty() {
        FileWebConfig {
            tls_server_config: None,
            basic_auth_users: None,
            bearer_token_file: None,
        }
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| match e.location() {
            Some(l) => ConfigError(format!("{shown}:{}: {e}", l.line())),
            None => ConfigError(format!("{shown}: {e}")),
        })?
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let mut users = BTreeMap::new();
    let mut cost = 4;
    for (user, hash) in file.basic_auth_users.unwrap_or_default() {
        if user.is_empty() || user.contains(':') {
            return Err(ConfigError(format!(
                "{shown}:{}: basic_auth_users: user name '{user}' must be non-empty and without ':'",
                line_of(&user)
            )));
        }
        let Ok(parts) = hash.parse::<bcrypt::HashParts>() else {
            return Err(ConfigError(format!(
                "{shown}:{}: basic_auth_users.{user}: not a bcrypt hash (expected $2y$/$2b$..., e.g. from `htpasswd -nBC 10`)",
                line_of(&format!("{user}:"))
            )));
        };
        cost = cost.max(parts.get_cost());
        users.insert(user, hash);
    }
    let token = match &file.bearer_token_file {
        Some(p) => {
            let p = resolve(p);
            let t = std::fs::read_to_string(&p).map_err(|e| {
                ConfigError(format!(
                    "{shown}:{}: bearer_token_file {}: cannot read: {e}",
                    line_of("bearer_token_file"),
                    p.display()
                ))
            })?;
            let t = t.trim();
            if t.is_empty() || t.contains(char::is_whitespace) {
                return Err(ConfigError(format!(
                    "{shown}:{}: bearer_token_file {}: must hold one non-empty token",
                    line_of("bearer_token_file"),
                    p.display()
                )));
            }
            Some(t.as_bytes().to_vec())
        }
        None => None,
    };
    let tls = match &file.tls_server_config {
        Some(t) => Some(Arc::new(tls_config(
            t,
            &resolve(&t.cert_file),
            &resolve(&t.key_file),
            &|m| ConfigError(format!("{shown}:{}: {m}", line_of("tls_server_config"))),
        )?)),
        None => None,
    };
    Ok(WebConfig {
        tls,
        auth: Arc::new(Auth {
            users,
            token,
            dummy: bcrypt::hash_with_salt("medtap", cost, [0x5a; 16])
                .map(|h| h.to_string())
                .unwrap_or_default(),
        }),
    })
}

fn tls_config(
    t: &FileTls,
    cert: &Path,
    key: &Path,
    err: &dyn Fn(String) -> ConfigError,
) -> Result<rustls::ServerConfig, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err(format!("cert_file {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(err(format!(
            "cert_file {}: no PEM certificate in it",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| err(format!("key_file {}: {e}", key.display())))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref() {
        None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(v) => {
            return Err(err(format!(
                "min_version '{v}': medtap supports TLS12 and TLS13"
            )))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| err(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            err(format!(
                "cert_file {} / key_file {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn basic(user: &str, pw: &str) -> Vec<u8> {
        // Tiny encoder for the test only.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let raw = format!("{user}:{pw}").into_bytes();
        let mut s = String::new();
        for c in raw.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        format!("Basic {s}").into_bytes()
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "abcd", "prometheus:pässword"] {
            let h = basic(s, "x");
            let enc = std::str::from_utf8(&h[6..]).unwrap();
            assert_eq!(
                base64_decode(enc).unwrap(),
                format!("{s}:x").into_bytes(),
                "{enc}"
            );
        }
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("ab!c").is_none());
    }

    #[test]
    fn basic_and_bearer_checks() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        write(dir.path(), "token", "tok-123\n");
        let cfg = write(
            dir.path(),
            "web.yml",
            &format!("basic_auth_users:\n  prom: '{hash}'\nbearer_token_file: token\n"),
        );
        let w = load(&cfg).unwrap();
        assert!(w.tls.is_none());
        let a = &w.auth;
        assert!(a.required());
        assert!(a.check(Some(&basic("prom", "s3cret"))));
        assert!(!a.check(Some(&basic("prom", "wrong"))));
        assert!(!a.check(Some(&basic("other", "s3cret"))));
        assert!(!a.check(None));
        assert!(a.check(Some(b"Bearer tok-123")));
        assert!(!a.check(Some(b"Bearer tok-124")));
        assert!(!a.check(Some(b"Basic !!!")));
    }

    #[test]
    fn bad_files_name_file_line_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.yml", "basic_auth_users:\n  prom: notahash\n");
        let e = load(&p).unwrap_err().0;
        assert!(e.starts_with(&format!("{}:2:", p.display())), "{e}");
        assert!(e.contains("bcrypt"), "{e}");
        let p = write(dir.path(), "b.yml", "basic_auth_users: {}\nbogus: 1\n");
        let e = load(&p).unwrap_err().0;
        assert!(
            e.starts_with(&format!("{}:2:", p.display())) && e.contains("bogus"),
            "{e}"
        );
        let p = write(
            dir.path(),
            "c.yml",
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
        );
        let e = load(&p).unwrap_err().0;
        assert!(e.contains("missing.crt"), "{e}");
        let p = write(dir.path(), "d.yml", "bearer_token_file: nothing\n");
        let e = load(&p).unwrap_err().0;
        assert!(e.contains("nothing") && e.contains("cannot read"), "{e}");
        let e = load(&dir.path().join("absent.yml")).unwrap_err().0;
        assert!(e.contains("absent.yml: cannot read"), "{e}");
    }
}
