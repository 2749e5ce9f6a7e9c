//! The running daemon as the commands that ask it reach it (`status`, `silence add`): its API
//! address and bearer token come from the config the daemon runs with (`-c FILE|DIR`, else
//! the default file when it exists, else the built-in default), and `--listen` overrides the
//! address. The token is read as the daemon reads it (`api_token_env` / `api_token_file`) and
//! sent with every request, so `read_token = true` needs nothing more.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::{self, Config};

/// The config a command names with `-c`, else the default file when it exists; `None`: no
/// config (zero-config). A config that does not load is an error with every problem.
pub fn load_config(path: Option<&Path>) -> Result<Option<(PathBuf, Config)>, String> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None if Path::new(config::DEFAULT_PATH).exists() => PathBuf::from(config::DEFAULT_PATH),
        None => return Ok(None),
    };
    match config::load(&path) {
        Ok(c) => Ok(Some((path, c))),
        Err(errors) => Err(errors
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// An HTTP client for one daemon's API.
pub struct Client {
    /// `http://HOST:PORT`.
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub enum AskError {
    /// Nothing answered at the address (refused, timed out, no route).
    Unreachable(String),
    /// Something answered, but not with what was asked for (an error status, not JSON).
    BadAnswer(String),
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) | Self::BadAnswer(m) => f.write_str(m),
        }
    }
}

/// The address a client asks: an IP address and port, `localhost:PORT` (127.0.0.1, as the
/// daemon binds it; a wildcard is reached through loopback), or another `HOST:PORT` left to
/// the resolver.
pub fn client_address(text: &str) -> Result<String, String> {
    match config::parse_listen(text) {
        Ok(addr) => Ok(reachable(addr).to_string()),
        Err(e) => match text.trim().rsplit_once(':') {
            Some((host, port))
                if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() =>
            {
                Ok(text.trim().to_string())
            }
            _ => Err(e),
        },
    }
}

/// The address to connect to for a daemon listening on `listen`: a wildcard (`0.0.0.0`, `::`)
/// is reached through loopback of its family.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, listen.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    }
}

impl Client {
    /// The client for the daemon of `config` (`None`: the built-in default), at `listen` when
    /// given. Errors: a bad `--listen`, a daemon that serves HTTPS, a token that reads need
    /// and that cannot be read.
    pub fn new(
        config: Option<&Config>,
        listen: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let daemon = config.map(|c| c.daemon.clone()).unwrap_or_default();
        let address = match listen {
            Some(l) => client_address(l).map_err(|e| format!("--listen: {e}"))?,
            None if config.is_some() => reachable(daemon.listen).to_string(),
            // Zero-config: where the daemon without a config listens.
            None => crate::daemon::DEFAULT_LISTEN.to_string(),
        };
        if daemon.tls.is_some() {
            return Err(format!(
                "the daemon at {address} serves HTTPS ([daemon] tls_cert), which this command \
                 does not speak yet; ask it with curl --cacert CERT https://{address}/api/v1/monitors"
            ));
        }
        let token =
            match crate::api::auth::ApiAuth::load(daemon.api_token.as_ref(), daemon.read_token) {
                Ok(auth) => auth.bearer().map(str::to_string),
                // Reads need no token unless `read_token` is set: then it must be readable here.
                Err(e) if daemon.read_token => {
                    return Err(format!(
                        "the daemon wants its API token for reads ([daemon] read_token) and it \
                     cannot be read here: {e:#}"
                    ))
                }
                Err(_) => None,
            };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            base: format!("http://{address}"),
            token,
            agent,
        })
    }

    /// The address asked, `HOST:PORT`.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// `GET path` answered with JSON.
    pub fn get(&self, path: &str) -> Result<Value, AskError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        let mut response = request.call().map_err(|e| {
            AskError::Unreachable(format!(
                "cannot reach the daemon at {}: {e}",
                self.address()
            ))
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| AskError::BadAnswer(format!("reading {url}: {e}")))?;
        if status != 200 {
            let said = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.chars().take(200).collect());
            let hint = match status {
                401 | 403 => {
                    " (the daemon wants its API token: pass -c with the config that names it)"
                }
                _ => "",
            };
            return Err(AskError::BadAnswer(format!(
                "the daemon at {} answered {status} to GET {path}: {said}{hint}",
                self.address()
            )));
        }
        serde_json::from_str(&body)
            .map_err(|e| AskError::BadAnswer(format!("{url} did not answer JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_keep_names_for_the_resolver_and_map_localhost() {
        assert_eq!(client_address("localhost:9898").unwrap(), "127.0.0.1:9898");
        assert_eq!(client_address("[::1]:1").unwrap(), "[::1]:1");
        assert_eq!(client_address("box.lan:9898").unwrap(), "box.lan:9898");
        assert_eq!(client_address("0.0.0.0:9898").unwrap(), "127.0.0.1:9898");
        assert!(client_address("box.lan").is_err());
        assert!(client_address("localhost:x").is_err());
    }

    #[test]
    fn a_daemon_on_every_interface_is_asked_through_loopback() {
        let r = |s: &str| reachable(s.parse().unwrap()).to_string();
        assert_eq!(r("0.0.0.0:9898"), "127.0.0.1:9898");
        assert_eq!(r("[::]:9898"), "[::1]:9898");
        assert_eq!(r("10.0.0.5:9898"), "10.0.0.5:9898");
    }
}
