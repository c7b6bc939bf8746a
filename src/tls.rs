//! TLS termination with rustls: Gunicorn's SSL settings turned into one `ServerConfig`.
//!
//! The master builds the config once at start-up (so a missing file, an unreadable key or a key
//! that does not match the certificate stops the server with exit 1 before any worker forks) and
//! can rebuild it later with [`Tls::reload`]; workers inherit it across fork and wrap each
//! accepted stream with [`Tls::handshake`], which has a deadline and runs in the connection's own
//! task, never on the accept loop or the app's thread.
//!
//! rustls is not OpenSSL. Settings expressed in OpenSSL's terms (`ciphers`, and whatever an
//! `ssl_context` hook does to an `ssl.SSLContext`) are interpreted by Python's `ssl` module in
//! `ferrocorn/_tls.py`, and the result is mapped here; what cannot be mapped is refused at start.
//! `docs/security.md` has the full mapping.

use crate::config::{Config, Key};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustls::crypto::ring::cipher_suite as suite;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// The only application protocol ferrocorn speaks over TLS (offered by ALPN).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Python's `ssl.TLSVersion` values (the TLS wire versions), as the hook reports them.
const TLS_1_2: i64 = 0x0303;
const TLS_1_3: i64 = 0x0304;

/// `cert_reqs`: Python's `ssl.VerifyMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `CERT_NONE` (0): no certificate is asked for.
    None,
    /// `CERT_OPTIONAL` (1): asked for, verified when given.
    Optional,
    /// `CERT_REQUIRED` (2): the handshake fails without a valid one.
    Required,
}

impl ClientAuth {
    fn from_mode(mode: i64) -> Result<ClientAuth, TlsError> {
        match mode {
            0 => Ok(ClientAuth::None),
            1 => Ok(ClientAuth::Optional),
            2 => Ok(ClientAuth::Required),
            n => Err(TlsError::BadCertReqs(n)),
        }
    }
}

/// A source of trusted CA certificates for client authentication.
#[derive(Debug, Clone)]
enum CaSource {
    File(PathBuf),
    Pem(String),
    Der(Vec<u8>),
}

/// Why TLS could not be set up; each message names the setting to fix.
#[derive(Debug)]
pub enum TlsError {
    /// `keyfile` without `certfile`.
    NoCertfile,
    Read {
        setting: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    NoCertificate {
        path: PathBuf,
    },
    NoKey {
        path: PathBuf,
    },
    EncryptedKey {
        path: PathBuf,
    },
    BadPem {
        setting: &'static str,
        path: PathBuf,
        err: String,
    },
    /// The key does not belong to the certificate, or rustls cannot use it.
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        err: rustls::Error,
    },
    BadCaCert {
        err: String,
    },
    BadCertReqs(i64),
    /// Client certificates were asked for with no CA to check them against.
    NoClientCa,
    Ciphers {
        spec: String,
        err: String,
    },
    /// No protocol version rustls implements is left (it has TLS 1.2 and 1.3 only).
    NoVersion,
    /// The `ssl_context` hook failed, or returned something unusable.
    Hook(String),
    /// The `ssl_context` hook changed something rustls cannot do.
    Unsupported(Vec<String>),
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoCertfile => f.write_str("keyfile is set but certfile is not (--certfile)"),
            TlsError::Read { setting, path, err } => {
                write!(f, "{setting} {:?} cannot be read: {err}", path.display().to_string())
            }
            TlsError::NoCertificate { path } => {
                write!(f, "certfile {:?} holds no PEM certificate", path.display().to_string())
            }
            TlsError::NoKey { path } => write!(f, "{:?} holds no PEM private key (--keyfile)", path.display().to_string()),
            TlsError::EncryptedKey { path } => write!(
                f,
                "the private key in {:?} is encrypted; ferrocorn needs an unencrypted PEM key (PKCS#8, PKCS#1 or SEC1)",
                path.display().to_string()
            ),
            TlsError::BadPem { setting, path, err } => {
                write!(f, "{setting} {:?} is not valid PEM: {err}", path.display().to_string())
            }
            TlsError::KeyMismatch { cert, key, err: rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) } => {
                write!(
                    f,
                    "the private key in {:?} does not match the certificate in {:?}",
                    key.display().to_string(),
                    cert.display().to_string()
                )
            }
            TlsError::KeyMismatch { cert, key, err } => write!(
                f,
                "the private key in {:?} cannot be used with the certificate in {:?}: {err}",
                key.display().to_string(),
                cert.display().to_string()
            ),
            TlsError::BadCaCert { err } => write!(f, "a CA certificate is not usable (--ca-certs): {err}"),
            TlsError::BadCertReqs(n) => write!(f, "cert_reqs must be 0, 1 or 2, not {n} (--cert-reqs)"),
            TlsError::NoClientCa => {
                f.write_str("cert_reqs asks for client certificates but no CA was given to verify them (--ca-certs)")
            }
            TlsError::Ciphers { spec, err } => write!(f, "ciphers {spec:?} selects no usable cipher: {err} (--ciphers)"),
            TlsError::NoVersion => {
                f.write_str("the TLS versions allowed leave none that ferrocorn implements (TLS 1.2 and TLS 1.3)")
            }
            TlsError::Hook(msg) => write!(f, "ssl_context hook: {msg}"),
            TlsError::Unsupported(what) => {
                write!(f, "ssl_context hook asks for what ferrocorn's TLS (rustls) cannot do: {}", what.join("; "))
            }
            TlsError::Rustls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The SSL settings as configured; kept so [`Tls::reload`] can build the config again.
pub struct TlsSettings {
    pub certfile: PathBuf,
    pub keyfile: Option<PathBuf>,
    pub ca_certs: Option<PathBuf>,
    pub cert_reqs: i64,
    pub ciphers: Option<String>,
    /// The `ssl_context` hook, when the config sets one.
    pub hook: Option<Py<PyAny>>,
    /// Handshake deadline.
    pub handshake_timeout: Duration,
    /// Kept for the hook's `conf` argument; behaviour is the same either way (see docs).
    pub suppress_ragged_eofs: bool,
    pub do_handshake_on_connect: bool,
}

impl TlsSettings {
    /// The settings when TLS is on (Gunicorn's `is_ssl`: `certfile` or `keyfile` set).
    pub fn from_config(py: Python<'_>, cfg: &Config) -> Result<Option<TlsSettings>, TlsError> {
        let certfile = cfg.str(Key::Certfile).filter(|s| !s.is_empty());
        let keyfile = cfg.str(Key::Keyfile).filter(|s| !s.is_empty());
        if certfile.is_none() && keyfile.is_none() {
            return Ok(None);
        }
        let certfile = certfile.ok_or(TlsError::NoCertfile)?;
        Ok(Some(TlsSettings {
            certfile: certfile.into(),
            keyfile: keyfile.map(PathBuf::from),
            ca_certs: cfg.str(Key::CaCerts).filter(|s| !s.is_empty()).map(PathBuf::from),
            cert_reqs: cfg.int(Key::CertReqs),
            ciphers: cfg.str(Key::Ciphers).filter(|s| !s.trim().is_empty()).map(str::to_string),
            hook: cfg.py(Key::SslContext).map(|h| h.clone_ref(py)),
            // `timeout` bounds every client wait; 0 (no timeout) still gets a finite handshake.
            handshake_timeout: cfg.duration(Key::Timeout).filter(|t| !t.is_zero()).unwrap_or(Duration::from_secs(30)),
            suppress_ragged_eofs: cfg.bool(Key::SuppressRaggedEofs),
            do_handshake_on_connect: cfg.bool(Key::DoHandshakeOnConnect),
        }))
    }
}

/// Everything a `ServerConfig` is built from, after the hook (if any) had its say.
#[derive(Debug, Clone)]
struct Plan {
    certfile: PathBuf,
    keyfile: Option<PathBuf>,
    cas: Vec<CaSource>,
    client_auth: ClientAuth,
    tls12: bool,
    tls13: bool,
    /// OpenSSL suite names to allow; `None` keeps rustls' defaults.
    suites: Option<Vec<String>>,
}

/// The TLS configuration shared by the master and (after fork) its workers.
#[derive(Clone)]
pub struct Tls {
    settings: Arc<TlsSettings>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("certfile", &self.settings.certfile).finish_non_exhaustive()
    }
}

/// Why a client's handshake did not complete (logged at debug level, as Gunicorn does).
#[derive(Debug)]
pub enum HandshakeError {
    TimedOut,
    Failed(std::io::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::TimedOut => f.write_str("TLS handshake timed out"),
            HandshakeError::Failed(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl Tls {
    /// Reads and checks every file and builds the config; runs the `ssl_context` hook if set.
    pub fn load(py: Python<'_>, settings: TlsSettings) -> Result<Tls, TlsError> {
        let config = build(py, &settings)?;
        Ok(Tls { settings: Arc::new(settings), current: Arc::new(RwLock::new(config)) })
    }

    /// Builds the config again from the same settings (certificates renewed on disk), for the
    /// master to call on HUP before it forks new workers. On error the old config stays.
    pub fn reload(&self, py: Python<'_>) -> Result<(), TlsError> {
        let fresh = build(py, &self.settings)?;
        // A poisoned lock only means a panic while swapping an Arc: the value is still whole.
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        *slot = fresh;
        Ok(())
    }

    fn config(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs the server side of the handshake on an accepted stream, within the deadline.
    pub async fn handshake<S>(&self, stream: S) -> Result<tokio_rustls::server::TlsStream<S>, HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
        match tokio::time::timeout(self.settings.handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(HandshakeError::Failed(e)),
            Err(_) => Err(HandshakeError::TimedOut),
        }
    }
}

fn build(py: Python<'_>, s: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let mut plan = Plan {
        certfile: s.certfile.clone(),
        keyfile: s.keyfile.clone(),
        cas: s.ca_certs.iter().cloned().map(CaSource::File).collect(),
        client_auth: ClientAuth::from_mode(s.cert_reqs)?,
        tls12: true,
        tls13: true,
        suites: None,
    };
    if let Some(spec) = &s.ciphers {
        plan.suites = Some(resolve_ciphers(py, spec)?);
    }
    // Build once from the plain settings first, so a bad file is reported as such even when a
    // hook would fail on it later in OpenSSL's words.
    let config = make_config(&plan)?;
    let Some(hook) = &s.hook else {
        return Ok(config);
    };
    plan = run_hook(py, hook, s)?;
    make_config(&plan)
}

/// Lets OpenSSL expand the cipher string (exact OpenSSL semantics: `HIGH:!aNULL`, `ECDHE+AESGCM`).
fn resolve_ciphers(py: Python<'_>, spec: &str) -> Result<Vec<String>, TlsError> {
    let names = py
        .import("ferrocorn._tls")
        .and_then(|m| m.call_method1("resolve_ciphers", (spec,)))
        .and_then(|v| v.extract::<Vec<String>>())
        .map_err(|e| TlsError::Ciphers { spec: spec.into(), err: e.value(py).to_string() })?;
    Ok(names)
}

fn run_hook(py: Python<'_>, hook: &Py<PyAny>, s: &TlsSettings) -> Result<Plan, TlsError> {
    let hook_err = |e: PyErr| TlsError::Hook(crate::wsgi::format_exception(py, &e));
    let settings = PyDict::new(py);
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    (|| -> PyResult<()> {
        settings.set_item("certfile", s.certfile.display().to_string())?;
        settings.set_item("keyfile", path(&s.keyfile))?;
        settings.set_item("ca_certs", path(&s.ca_certs))?;
        settings.set_item("cert_reqs", s.cert_reqs)?;
        settings.set_item("ciphers", s.ciphers.clone())?;
        settings.set_item("suppress_ragged_eofs", s.suppress_ragged_eofs)?;
        settings.set_item("do_handshake_on_connect", s.do_handshake_on_connect)
    })()
    .map_err(hook_err)?;
    let facts =
        py.import("ferrocorn._tls").and_then(|m| m.call_method1("run_hook", (hook.bind(py), &settings))).map_err(hook_err)?;
    let get = |k: &str| facts.get_item(k).map_err(hook_err);

    let unsupported: Vec<String> = get("unsupported")?.extract().map_err(hook_err)?;
    let alpn: Option<Vec<String>> = get("alpn")?.extract().map_err(hook_err)?;
    let mut unsupported = unsupported;
    if let Some(alpn) = &alpn {
        if !alpn.iter().any(|p| p.as_bytes() == ALPN_HTTP11) {
            unsupported.push(format!("set_alpn_protocols({alpn:?}): ferrocorn speaks only http/1.1"));
        }
    }
    if !unsupported.is_empty() {
        return Err(TlsError::Unsupported(unsupported));
    }

    let mut cas = Vec::new();
    for (kind, value) in get("cas")?.extract::<Vec<(String, Bound<'_, PyAny>)>>().map_err(hook_err)? {
        cas.push(match kind.as_str() {
            "file" => CaSource::File(value.extract::<String>().map_err(hook_err)?.into()),
            "pem" => CaSource::Pem(value.extract().map_err(hook_err)?),
            _ => CaSource::Der(value.extract().map_err(hook_err)?),
        });
    }
    let min: i64 = get("minimum_version")?.extract().map_err(hook_err)?;
    let max: i64 = get("maximum_version")?.extract().map_err(hook_err)?;
    let no12: bool = get("no_tls12")?.extract().map_err(hook_err)?;
    let no13: bool = get("no_tls13")?.extract().map_err(hook_err)?;
    // Negative values are MINIMUM_SUPPORTED / MAXIMUM_SUPPORTED: no bound.
    let allows = |v: i64| (min < 0 || min <= v) && (max < 0 || v <= max);
    Ok(Plan {
        certfile: get("certfile")?.extract::<String>().map_err(hook_err)?.into(),
        keyfile: get("keyfile")?.extract::<Option<String>>().map_err(hook_err)?.map(PathBuf::from),
        cas,
        client_auth: ClientAuth::from_mode(get("verify_mode")?.extract().map_err(hook_err)?)?,
        tls12: allows(TLS_1_2) && !no12,
        tls13: allows(TLS_1_3) && !no13,
        suites: get("ciphers")?.extract().map_err(hook_err)?,
    })
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| TlsError::Read { setting, path: path.into(), err })
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("certfile", path)?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::BadPem {
        setting: "certfile",
        path: path.into(),
        err: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("keyfile", path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => Ok(k),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            if memchr_find(&pem, b"ENCRYPTED PRIVATE KEY") || memchr_find(&pem, b"Proc-Type: 4,ENCRYPTED") {
                Err(TlsError::EncryptedKey { path: path.into() })
            } else {
                Err(TlsError::NoKey { path: path.into() })
            }
        }
        Err(e) => Err(TlsError::BadPem { setting: "keyfile", path: path.into(), err: e.to_string() }),
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn load_roots(cas: &[CaSource]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        let ders: Vec<CertificateDer<'static>> = match ca {
            CaSource::File(path) => {
                let pem = read("ca_certs", path)?;
                CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().map_err(|e| TlsError::BadPem {
                    setting: "ca_certs",
                    path: path.clone(),
                    err: e.to_string(),
                })?
            }
            CaSource::Pem(text) => CertificateDer::pem_slice_iter(text.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| TlsError::BadCaCert { err: e.to_string() })?,
            CaSource::Der(der) => vec![CertificateDer::from(der.clone())],
        };
        if ders.is_empty() {
            let what = match ca {
                CaSource::File(p) => format!("{:?} holds no PEM certificate", p.display().to_string()),
                _ => "cadata holds no certificate".to_string(),
            };
            return Err(TlsError::BadCaCert { err: what });
        }
        for der in ders {
            roots.add(der).map_err(|e| TlsError::BadCaCert { err: e.to_string() })?;
        }
    }
    Ok(roots)
}

/// rustls' suites by their OpenSSL names (`SSL_CIPHER_get_name`, what `get_ciphers()` reports).
fn suite_by_openssl_name(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "TLS_AES_256_GCM_SHA384" => suite::TLS13_AES_256_GCM_SHA384,
        "TLS_AES_128_GCM_SHA256" => suite::TLS13_AES_128_GCM_SHA256,
        "TLS_CHACHA20_POLY1305_SHA256" => suite::TLS13_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-AES128-GCM-SHA256" => suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-AES256-GCM-SHA384" => suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES128-GCM-SHA256" => suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305" => suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

fn make_config(plan: &Plan) -> Result<Arc<ServerConfig>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &plan.suites {
        // OpenSSL's order is the preference order; keep it.
        let chosen: Vec<SupportedCipherSuite> = names.iter().filter_map(|n| suite_by_openssl_name(n)).collect();
        let has12 = chosen.iter().any(|s| s.tls13().is_none());
        let has13 = chosen.iter().any(|s| s.tls13().is_some());
        if (!has12 || !plan.tls12) && (!has13 || !plan.tls13) {
            return Err(TlsError::Ciphers {
                spec: names.join(":"),
                err: "none of the suites selected is one rustls implements for the versions allowed".into(),
            });
        }
        provider.cipher_suites = chosen;
    }
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if plan.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if plan.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        return Err(TlsError::NoVersion);
    }
    let builder =
        ServerConfig::builder_with_provider(Arc::new(provider)).with_protocol_versions(&versions).map_err(TlsError::Rustls)?;
    let builder = match plan.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = load_roots(&plan.cas)?;
            if roots.is_empty() {
                return Err(TlsError::NoClientCa);
            }
            let provider = builder.crypto_provider().clone();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::BadCaCert { err: e.to_string() })?)
        }
    };
    if plan.client_auth == ClientAuth::None {
        // Still read the CA file, so a wrong path is reported now rather than never.
        load_roots(&plan.cas)?;
    }
    let chain = load_chain(&plan.certfile)?;
    let key_path = plan.keyfile.clone().unwrap_or_else(|| plan.certfile.clone());
    let key = load_key(&key_path)?;
    let mut config = builder.with_single_cert(chain, key).map_err(|err| TlsError::KeyMismatch {
        cert: plan.certfile.clone(),
        key: key_path,
        err,
    })?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_reqs_values() {
        assert_eq!(ClientAuth::from_mode(0).ok(), Some(ClientAuth::None));
        assert_eq!(ClientAuth::from_mode(2).ok(), Some(ClientAuth::Required));
        assert!(matches!(ClientAuth::from_mode(3), Err(TlsError::BadCertReqs(3))));
    }

    #[test]
    fn openssl_names_map_to_rustls_suites() {
        assert!(suite_by_openssl_name("ECDHE-RSA-AES128-GCM-SHA256").is_some());
        assert!(suite_by_openssl_name("TLS_AES_256_GCM_SHA384").is_some_and(|s| s.tls13().is_some()));
        assert!(suite_by_openssl_name("AES128-SHA").is_none());
    }

    #[test]
    fn missing_files_are_named() {
        let plan = Plan {
            certfile: "/nonexistent/cert.pem".into(),
            keyfile: None,
            cas: vec![],
            client_auth: ClientAuth::None,
            tls12: true,
            tls13: true,
            suites: None,
        };
        let e = make_config(&plan).unwrap_err().to_string();
        assert!(e.contains("certfile \"/nonexistent/cert.pem\" cannot be read"), "{e}");
        let plan = Plan { client_auth: ClientAuth::Required, ..plan };
        assert!(matches!(make_config(&plan), Err(TlsError::NoClientCa)));
    }
}
