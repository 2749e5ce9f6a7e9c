//! TLS with rustls: the client configuration (built once per probe, not per connection),
//! the handshake, and what the server's certificate chain says.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::result::TlsInfo;
use crate::spec::{TlsSpec, Verify};
use crate::target::Host;

/// What every TLS handshake of a probe shares, prepared once by [`crate::Probe::new`].
#[derive(Debug, Clone)]
pub(crate) struct PreparedTls {
    pub(crate) config: Arc<ClientConfig>,
    /// Sent as SNI (for names) and verified against the certificate.
    pub(crate) server_name: ServerName<'static>,
}

impl PreparedTls {
    /// Loads the files `spec` names and checks the server name. Errors name the culprit.
    pub(crate) fn new(spec: &TlsSpec, host: &Host) -> Result<Self, String> {
        Ok(Self {
            config: client_config(spec)?,
            server_name: server_name(spec, host)?,
        })
    }
}

/// Builds the rustls client configuration for `spec`. Errors name the file and the problem.
pub(crate) fn client_config(spec: &TlsSpec) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match &spec.verify {
        Verify::SystemRoots => builder.with_root_certificates(system_roots()),
        Verify::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "CA file {}: no certificate found (expected PEM)",
                    path.display()
                ));
            }
            builder.with_root_certificates(roots)
        }
        Verify::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
    };
    let config = match &spec.client_cert {
        None => builder.with_no_client_auth(),
        Some(cc) => {
            let certs = CertificateDer::pem_file_iter(&cc.cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("client certificate {}: {e}", cc.cert.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "client certificate {}: no certificate found (expected PEM)",
                    cc.cert.display()
                ));
            }
            let key = PrivateKeyDer::from_pem_file(&cc.key)
                .map_err(|e| format!("client key {}: {e}", cc.key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate {}: {e}", cc.cert.display()))?
        }
    };
    Ok(Arc::new(config))
}

/// The system's trusted roots, loaded once per process (reading them takes milliseconds).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "could not load some system root certificates");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "loaded system root certificates");
            Arc::new(roots)
        })
        .clone()
}

/// The name to send as SNI and verify against: the explicit one, else the host name;
/// an address target sends no SNI and is verified against the certificate's IP entries.
pub(crate) fn server_name(spec: &TlsSpec, host: &Host) -> Result<ServerName<'static>, String> {
    match (&spec.sni, host) {
        (Some(name), _) => ServerName::try_from(name.clone())
            .map_err(|e| format!("invalid SNI name {name:?}: {e}")),
        (None, Host::Name(name)) => ServerName::try_from(name.clone())
            .map_err(|e| format!("invalid server name {name:?}: {e}")),
        (None, Host::Ip(ip)) => Ok(ServerName::IpAddress((*ip).into())),
    }
}

/// Reads the negotiated session and the presented chain.
pub(crate) fn session_info(
    conn: &rustls::ClientConnection,
    name: &ServerName<'_>,
    verified: bool,
) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    let sni = match name {
        ServerName::DnsName(n) => Some(n.as_ref().to_string()),
        _ => None,
    };
    let mut info = TlsInfo {
        version,
        cipher,
        sni,
        verified,
        subject: String::new(),
        issuer: String::new(),
        not_after: String::new(),
        earliest_expiry_unix: 0,
        last_expiry_unix: 0,
        days_left: 0,
        chain_len: 0,
    };
    let chain = conn.peer_certificates().unwrap_or(&[]);
    info.chain_len = chain.len();
    let mut expiries = Vec::with_capacity(chain.len());
    for (i, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            continue;
        };
        let not_after = cert.validity().not_after;
        expiries.push(not_after.timestamp());
        if i == 0 {
            info.subject = cert.subject().to_string();
            info.issuer = cert.issuer().to_string();
            info.not_after = not_after
                .to_datetime()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| not_after.to_string());
        }
    }
    if let (Some(&earliest), Some(&last)) = (expiries.iter().min(), expiries.iter().max()) {
        info.earliest_expiry_unix = earliest;
        info.last_expiry_unix = last;
        info.days_left = (earliest - now_unix()).div_euclid(86_400);
    }
    info
}

/// A Unix time as RFC 3339, for messages; the number itself if it is out of range.
pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A verifier for `Verify::Insecure`: accepts any chain and name, but still checks the
/// handshake signatures so the session itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A readable cause for a failed handshake: rustls' own error when there is one.
pub(crate) fn describe_handshake_error(e: &std::io::Error) -> String {
    describe_tls_error(e).unwrap_or_else(|| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "server closed the connection mid-handshake".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset mid-handshake".into(),
        _ => e.to_string(),
    })
}

/// The rustls error inside an I/O error, described; `None` when the error is not from TLS.
/// After a TLS 1.3 handshake this is how a server's rejection of the client certificate
/// arrives: as a fatal alert on the first read.
pub(crate) fn describe_tls_error(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match inner {
        rustls::Error::InvalidCertificate(cert) => {
            format!("certificate rejected: {}", describe_cert_error(cert))
        }
        other => other.to_string(),
    })
}

fn describe_cert_error(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::Expired | C::ExpiredContext { .. } => "certificate has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "certificate is not valid yet".into(),
        C::UnknownIssuer => "unknown issuer (self-signed or untrusted CA)".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "certificate is not valid for this name".into()
        }
        C::BadSignature => "bad signature".into(),
        C::Revoked => "certificate revoked".into(),
        other => format!("{other:?}"),
    }
}
