//! TLS with rustls: the client configuration (built once per probe, not per connection),
//! the handshake, and what the server's certificate chain says.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::result::TlsInfo;
use crate::spec::{TlsSpec, TlsVersion, Verify};
use crate::target::Host;

/// What every TLS handshake of a probe shares, prepared once by [`crate::Probe::new`].
#[derive(Debug, Clone)]
pub(crate) struct PreparedTls {
    pub(crate) config: Arc<ClientConfig>,
    /// Sent as SNI (for names) and verified against the certificate.
    pub(crate) server_name: ServerName<'static>,
    /// Whether the configuration verifies the chain (not `Verify::Insecure`).
    pub(crate) verifies: bool,
    /// The trusted roots, for the verified chain's expiry.
    pub(crate) anchors: Arc<Anchors>,
}

impl PreparedTls {
    /// Loads the files `spec` names and checks the server name. Errors name the culprit.
    pub(crate) fn new(spec: &TlsSpec, host: &Host) -> Result<Self, String> {
        let (config, anchors) = client_config(spec)?;
        Ok(Self {
            config,
            server_name: server_name(spec, host)?,
            verifies: !matches!(spec.verify, Verify::Insecure),
            anchors,
        })
    }

    /// With a configuration built earlier: only the server name is checked.
    pub(crate) fn with_config(
        config: Arc<ClientConfig>,
        anchors: Arc<Anchors>,
        verifies: bool,
        spec: &TlsSpec,
        host: &Host,
    ) -> Result<Self, String> {
        Ok(Self {
            config,
            server_name: server_name(spec, host)?,
            verifies,
            anchors,
        })
    }
}

/// The trusted roots' subjects (DER) with their validity (Unix seconds, not before / not
/// after): where a verified chain ends, and when.
#[derive(Debug, Default)]
pub(crate) struct Anchors(HashMap<Vec<u8>, Vec<(i64, i64)>>);

impl Anchors {
    fn add(&mut self, der: &[u8]) {
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
            let v = cert.validity();
            self.0
                .entry(cert.subject().as_raw().to_vec())
                .or_default()
                .push((v.not_before.timestamp(), v.not_after.timestamp()));
        }
    }
}

/// Builds the rustls client configuration for `spec`, and the set of roots it trusts (empty
/// when it verifies nothing). Errors name the file and the problem.
pub(crate) fn client_config(spec: &TlsSpec) -> Result<(Arc<ClientConfig>, Arc<Anchors>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let min = spec.min_version.unwrap_or(TlsVersion::Tls12);
    let max = spec.max_version.unwrap_or(TlsVersion::Tls13);
    if max < min {
        return Err(format!(
            "TLS max version {} is below min version {}",
            version_name(max),
            version_name(min)
        ));
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match (min, max) {
        (TlsVersion::Tls12, TlsVersion::Tls12) => &[&rustls::version::TLS12],
        (TlsVersion::Tls13, _) => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut anchors = Arc::new(Anchors::default());
    let builder = match &spec.verify {
        Verify::SystemRoots => {
            let (roots, system_anchors) = system_roots();
            anchors = system_anchors;
            builder.with_root_certificates(roots)
        }
        Verify::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let mut file_anchors = Anchors::default();
            let pem = portwarden_bounded_read::read_bounded_bytes(
                path,
                portwarden_bounded_read::PEM_LIMIT,
            )
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
                file_anchors.add(cert.as_ref());
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
            anchors = Arc::new(file_anchors);
            builder.with_root_certificates(roots)
        }
        Verify::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
    };
    let config = match &spec.client_cert {
        None => builder.with_no_client_auth(),
        Some(cc) => {
            let cert_pem = portwarden_bounded_read::read_bounded_bytes(
                &cc.cert,
                portwarden_bounded_read::PEM_LIMIT,
            )
            .map_err(|e| format!("client certificate {}: {e}", cc.cert.display()))?;
            let certs = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate {}: {e}", cc.cert.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "client certificate {}: no certificate found (expected PEM)",
                    cc.cert.display()
                ));
            }
            let key_pem = portwarden_bounded_read::read_bounded_bytes(
                &cc.key,
                portwarden_bounded_read::PEM_LIMIT,
            )
            .map_err(|e| format!("client key {}: {e}", cc.key.display()))?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| format!("client key {}: {e}", cc.key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate {}: {e}", cc.cert.display()))?
        }
    };
    Ok((Arc::new(config), anchors))
}

fn version_name(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "TLS 1.2",
        TlsVersion::Tls13 => "TLS 1.3",
    }
}

/// The system's trusted roots, loaded once per process (reading them takes milliseconds).
fn system_roots() -> (Arc<RootCertStore>, Arc<Anchors>) {
    static ROOTS: OnceLock<(Arc<RootCertStore>, Arc<Anchors>)> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(target: "probe::tls", error = %e, "could not load some system root certificates");
            }
            let mut anchors = Anchors::default();
            for cert in &found.certs {
                anchors.add(cert.as_ref());
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(target: "probe::tls", added, ignored, "loaded system root certificates");
            (Arc::new(roots), Arc::new(anchors))
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
    anchors: &Anchors,
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
        leaf_sha256: String::new(),
        leaf_subject_rfc2253: String::new(),
        leaf_issuer_rfc2253: String::new(),
        leaf_dns_names: Vec::new(),
        verified_chain_expiry_unix: None,
    };
    let chain = conn.peer_certificates().unwrap_or(&[]);
    info.chain_len = chain.len();
    let mut expiries = Vec::with_capacity(chain.len());
    let mut nodes = Vec::with_capacity(chain.len());
    for (i, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            continue;
        };
        let not_after = cert.validity().not_after;
        expiries.push(not_after.timestamp());
        nodes.push(ChainNode {
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: not_after.timestamp(),
        });
        if i == 0 {
            info.subject = cert.subject().to_string();
            info.issuer = cert.issuer().to_string();
            info.leaf_sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
            info.leaf_subject_rfc2253 = go_name(cert.subject());
            info.leaf_issuer_rfc2253 = go_name(cert.issuer());
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                info.leaf_dns_names = san
                    .value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    })
                    .collect();
            }
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
        if verified {
            // Should the subjects not lead to a root (a name encoded differently), the
            // presented chain's earliest expiry is the best estimate.
            info.verified_chain_expiry_unix =
                Some(verified_chain_expiry(&nodes, anchors, now_unix()).unwrap_or(earliest));
        }
    }
    info
}

/// A presented certificate, as chain building needs it.
struct ChainNode {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

/// Most certificates of a presented chain that chain building looks at.
const MAX_CHAIN: usize = 16;

/// blackbox_exporter's `getLastChainExpiry` over Go's verified chains: every path from the
/// leaf (`nodes[0]`) through presented certificates to a trusted root, all valid at `now`,
/// linked by issuer and subject names (signatures were checked by the verifier); for each
/// the earliest notAfter, the root's included; the latest of those. A presented
/// certificate that no valid path uses (an expired cross-signature) does not count.
fn verified_chain_expiry(nodes: &[ChainNode], anchors: &Anchors, now: i64) -> Option<i64> {
    let valid = |nb: i64, na: i64| nb <= now && now <= na;
    let nodes = &nodes[..nodes.len().min(MAX_CHAIN)];
    fn walk(
        nodes: &[ChainNode],
        anchors: &Anchors,
        valid: &dyn Fn(i64, i64) -> bool,
        at: usize,
        used: u16,
        path_min: i64,
    ) -> Option<i64> {
        let node = &nodes[at];
        if !valid(node.not_before, node.not_after) {
            return None;
        }
        let path_min = path_min.min(node.not_after);
        let mut best: Option<i64> = None;
        for &(nb, na) in anchors.0.get(&node.issuer).into_iter().flatten() {
            if valid(nb, na) {
                best = best.max(Some(path_min.min(na)));
            }
        }
        for (next, cand) in nodes.iter().enumerate() {
            let bit = 1u16 << next;
            if used & bit == 0 && cand.subject == node.issuer {
                let found = walk(nodes, anchors, valid, next, used | bit, path_min);
                best = best.max(found);
            }
        }
        best
    }
    if nodes.is_empty() {
        return None;
    }
    walk(nodes, anchors, &valid, 0, 1, i64::MAX)
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
/// handshake signatures so the session itself is sound. Public for clients built outside the
/// engine that must not verify either (the Nagios plugins' TLS).
#[derive(Debug)]
pub struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl AcceptAnyCertificate {
    /// Checks handshake signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self(provider)
    }
}

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

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The attributes Go parses into named fields, in the order its `ToRDNSequence` writes
/// them back (the string is that sequence reversed), with their short names.
const GO_NAMED: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// A distinguished name as Go's `pkix.Name.String()` writes a parsed certificate's name:
/// attributes of other types first (each its own RDN, as `OID=#hex` of the value
/// re-encoded by Go's `asn1.Marshal`), then the named ones grouped by type in Go's field
/// order (one multi-valued RDN per type; a single CN and serial number, the last one
/// wins); the whole sequence reversed, `,` between RDNs and `+` inside one.
fn go_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    // (type name or OID, value, whether the value is Go-escaped text)
    let mut others: Vec<String> = Vec::new();
    let mut named: [Vec<String>; 9] = Default::default();
    for atv in name.iter_attributes() {
        let oid = atv.attr_type().to_id_string();
        let Ok(value) = atv.as_str() else {
            continue; // Go keeps only string values.
        };
        match GO_NAMED.iter().position(|(o, _)| *o == oid) {
            // CN and SERIALNUMBER are single strings in Go: the last one wins.
            Some(i @ (7 | 8)) => named[i] = vec![value.to_string()],
            Some(i) => named[i].push(value.to_string()),
            None => others.push(format!("{oid}=#{}", hex(&go_asn1_string(value)))),
        }
    }
    let mut rdns: Vec<String> = others;
    for (i, values) in named.iter().enumerate() {
        if values.is_empty() || (i >= 7 && values.iter().all(String::is_empty)) {
            continue;
        }
        let short = GO_NAMED[i].1;
        let rdn: Vec<String> = values
            .iter()
            .map(|v| format!("{short}={}", go_escape(v)))
            .collect();
        rdns.push(rdn.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

/// Go's `RDNSequence.String()` escaping of an attribute value.
fn go_escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (k, c) in value.chars().enumerate() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `asn1.Marshal` of a string: PrintableString when every character is printable
/// in ASN.1's sense, else UTF8String; DER length.
fn go_asn1_string(value: &str) -> Vec<u8> {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let tag = if printable { 0x13 } else { 0x0c };
    let body = value.as_bytes();
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n => {
            let bytes = (n as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (8 - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(dn: &[(rcgen::DnType, &str)]) -> String {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            p.distinguished_name.push(t.clone(), *v);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        go_name(parsed.subject())
    }

    #[test]
    fn names_are_written_as_go_writes_them() {
        use rcgen::DnType as T;
        // Go's field order reversed, whatever the certificate's order; RFC 2253 escapes.
        assert_eq!(
            name_of(&[
                (T::CommonName, " lead, trail "),
                (T::CountryName, "DE"),
                (T::OrganizationName, "Acme+Co"),
                (T::OrganizationalUnitName, "#ops"),
            ]),
            r"CN=\ lead\, trail\ ,OU=\#ops,O=Acme\+Co,C=DE"
        );
        assert_eq!(name_of(&[(T::CommonName, "localhost")]), "CN=localhost");
        // Attributes Go does not name come last, as OID=#DER.
        assert_eq!(
            name_of(&[
                (T::CommonName, "x"),
                (T::CustomDnType(vec![2, 5, 4, 12]), "Boss")
            ]),
            "CN=x,2.5.4.12=#1304426f7373"
        );
    }

    fn node(subject: &str, issuer: &str, not_before: i64, not_after: i64) -> ChainNode {
        ChainNode {
            subject: subject.as_bytes().to_vec(),
            issuer: issuer.as_bytes().to_vec(),
            not_before,
            not_after,
        }
    }

    #[test]
    fn verified_chain_expiry_takes_the_best_valid_path_to_a_root() {
        let mut anchors = Anchors::default();
        anchors.0.insert(b"root".to_vec(), vec![(0, 500)]);
        anchors.0.insert(b"old root".to_vec(), vec![(0, 50)]);
        let now = 100;
        // leaf <- inter <- root (the root expires first: it counts).
        let chain = [node("leaf", "inter", 0, 900), node("inter", "root", 0, 800)];
        assert_eq!(verified_chain_expiry(&chain, &anchors, now), Some(500));
        // An expired cross-signature of inter, presented too, is on no valid path.
        let chain = [
            node("leaf", "inter", 0, 900),
            node("inter", "old root", 0, 90),
            node("inter", "root", 0, 800),
        ];
        assert_eq!(verified_chain_expiry(&chain, &anchors, now), Some(500));
        // Two valid paths: the latest-expiring one.
        anchors.0.insert(b"new root".to_vec(), vec![(0, 700)]);
        let chain = [
            node("leaf", "inter", 0, 900),
            node("inter", "root", 0, 800),
            node("inter", "new root", 0, 600),
        ];
        assert_eq!(verified_chain_expiry(&chain, &anchors, now), Some(600));
        // The leaf issued by a root directly; nothing reaching a root.
        assert_eq!(
            verified_chain_expiry(&[node("leaf", "root", 0, 300)], &anchors, now),
            Some(300)
        );
        assert_eq!(
            verified_chain_expiry(&[node("leaf", "elsewhere", 0, 300)], &anchors, now),
            None
        );
        // A cycle of names ends.
        let chain = [node("a", "b", 0, 900), node("b", "a", 0, 900)];
        assert_eq!(verified_chain_expiry(&chain, &anchors, now), None);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
