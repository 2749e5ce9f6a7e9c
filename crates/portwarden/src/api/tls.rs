//! HTTPS for the API (`[daemon] tls_cert` and `tls_key`, PEM files): rustls with the ring
//! provider. The handshake runs in each connection's own task (`server.rs`), bounded in
//! time by `[daemon] http_header_timeout` and in number by `http_max_connections`, so a slow or
//! silent client never holds up the others.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::files;

/// Reads the certificate chain and key; names the file in every error.
/// Both are read bounded (regular files of at most [`files::PEM_LIMIT`] bytes).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let read = |what: &str, path: &Path| {
        files::read_bounded_bytes(path, files::PEM_LIMIT)
            .map_err(|e| anyhow::anyhow!("[daemon] {what} {}: cannot read: {e}", path.display()))
    };
    let cert_pem = read("tls_cert", cert)?;
    let key_pem = read("tls_key", key)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("[daemon] tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "[daemon] tls_cert {}: no certificate found (expected PEM)",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("[daemon] tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("[daemon] tls_cert/tls_key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {

    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    #[tokio::test]
    async fn serves_https_with_the_configured_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
        let config = server_config(&cert_path, &key_path).unwrap();

        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let limits = crate::api::server::HttpLimits {
            header_timeout: Duration::from_secs(1),
            ..Default::default()
        };
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(crate::api::server::run(
            tcp,
            Some(config),
            app,
            limits,
            stop,
        ));

        // A client that trusts exactly this certificate.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        // A silent plain-TCP client does not hold up the TLS one.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        let _ = tls.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        // The silent client's handshake times out with the header timeout: closed.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest));
        assert!(read.await.is_ok(), "a silent client stays connected");

        // Unreadable files are named.
        let e = server_config(&dir.path().join("nope.pem"), &key_path).unwrap_err();
        assert!(e.to_string().contains("tls_cert"), "{e}");
        // A device is refused by its kind, not read until memory runs out.
        let e = server_config(Path::new("/dev/zero"), &key_path).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("/dev/zero: cannot read: is a character device, not a regular file"),
            "{e}"
        );
        let e = server_config(&cert_path, Path::new("/dev/zero")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("[daemon] tls_key /dev/zero: cannot read: is a character device"),
            "{e}"
        );
    }
}
