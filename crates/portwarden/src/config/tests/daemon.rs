//! `[daemon]`: the listen address, the API token and TLS, and the HTTP limits.

use super::*;

#[test]
fn api_token_comes_from_an_env_var_or_a_file_not_both() {
    let c = ok("[daemon]\napi_token_env = \"PW_TOKEN\"\nread_token = true\n");
    assert_eq!(
        c.daemon.api_token,
        Some(ApiTokenSource::Env("PW_TOKEN".into()))
    );
    assert!(c.daemon.read_token);
    let c = ok("[daemon]\napi_token_file = \"token\"\n");
    assert_eq!(
        c.daemon.api_token,
        Some(ApiTokenSource::File(PathBuf::from("./token")))
    );
    assert!(!c.daemon.read_token);
    let c = ok("[daemon]\n");
    assert_eq!(c.daemon.api_token, None);
    assert_eq!(
        problems("[daemon]\napi_token_env = \"A\"\napi_token_file = \"t\"\n"),
        vec!["portwarden.toml:2:17: daemon: api_token_env: set api_token_env or api_token_file, not both"]
    );
    assert_eq!(
        problems("[daemon]\nread_token = true\n"),
        vec!["portwarden.toml:2:14: daemon: read_token: needs a token: set api_token_env or api_token_file"]
    );
    assert_eq!(
        problems("[daemon]\napi_token_env = \"A=B\"\n"),
        vec!["portwarden.toml:2:17: daemon: api_token_env: not an environment variable name: \"A=B\""]
    );
}

#[test]
fn api_tls_needs_a_certificate_and_a_key() {
    let c = ok("[daemon]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n");
    assert_eq!(
        c.daemon.tls,
        Some((PathBuf::from("./cert.pem"), PathBuf::from("./key.pem")))
    );
    assert_eq!(ok("[daemon]\n").daemon.tls, None);
    assert_eq!(
        problems("[daemon]\ntls_cert = \"cert.pem\"\n"),
        vec!["portwarden.toml:2:12: daemon: tls_cert: needs tls_key too"]
    );
    assert_eq!(
        problems("[daemon]\ntls_key = \"key.pem\"\n"),
        vec!["portwarden.toml:2:11: daemon: tls_key: needs tls_cert too"]
    );
}

#[test]
fn http_limits_have_defaults_and_are_checked() {
    let c = ok("");
    assert_eq!(c.daemon.http, crate::api::server::HttpLimits::default());
    assert_eq!(c.daemon.http.header_timeout, Duration::from_secs(10));
    assert_eq!(c.daemon.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.daemon.http.max_connections, 1024);
    let c = ok(
        "[daemon]\nhttp_header_timeout = \"2s\"\nhttp_idle_timeout = \"5m\"\n\
         http_max_connections = 20\n",
    );
    assert_eq!(
        c.daemon.http,
        crate::api::server::HttpLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(300),
            max_connections: 20,
        }
    );
    assert_eq!(
        problems(
            "[daemon]\nhttp_header_timeout = \"0s\"\nhttp_idle_timeout = \"0s\"\n\
             http_max_connections = 0\n"
        ),
        vec![
            "portwarden.toml:2:23: daemon: http_header_timeout: must be greater than 0",
            "portwarden.toml:3:21: daemon: http_idle_timeout: must be greater than 0",
            "portwarden.toml:4:24: daemon: http_max_connections: must be 1-1000000, got 0",
        ]
    );
}

/// Issue 15: `listen = "localhost:9898"` failed with "invalid socket address syntax".
#[test]
fn listen_takes_localhost_and_says_what_else_it_takes() {
    let c = ok("[daemon]\nlisten = \"localhost:9898\"\n");
    assert_eq!(c.daemon.listen.to_string(), "127.0.0.1:9898");
    assert_eq!(
        problems("[daemon]\nlisten = \"monitor.example.com:9898\"\n"),
        vec![
            "portwarden.toml:2:10: daemon: listen: \"monitor.example.com:9898\": the host name \
             \"monitor.example.com\" is not looked up; write an IP address and port: \
             \"127.0.0.1:9898\" (this host only), \"0.0.0.0:9898\" (every interface), \
             \"[::1]:9898\" or \"localhost:9898\""
        ]
    );
    assert_eq!(
        problems("[daemon]\nlisten = \"localhost:http\"\n"),
        vec![
            "portwarden.toml:2:10: daemon: listen: not a port: \"http\" in \"localhost:http\" (a \
             number 0-65535)"
        ]
    );
}
