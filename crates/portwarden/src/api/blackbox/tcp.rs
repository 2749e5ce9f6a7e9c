//! One probe of a `tcp` module (blackbox's `prober/tcp.go`): the address chosen as
//! `chooseProtocol` does, the engine run against it, its findings kept as an [`Outcome`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use portwarden_probe::{DialogEvent, ExpectEnd, Family, Host, Probe, Target};

use super::exposition::{Outcome, TlsGauges};
use super::TcpModule;

/// Go's zero time in Unix seconds: blackbox's last-chain expiry when nothing was verified.
pub(super) const GO_ZERO_TIME: f64 = -62_135_596_800.0;

pub(super) async fn run(
    module: &TcpModule,
    target: &str,
    hostname: Option<&str>,
    budget: Duration,
    debug: bool,
) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome {
        debug,
        ..Outcome::default()
    };
    let finish = |mut out: Outcome| {
        out.duration = start.elapsed().as_secs_f64();
        out
    };
    let parsed = match Target::parse_with_default(target, None) {
        Ok(t) => t,
        Err(e) => {
            out.note(|| format!("Error splitting target address and port: {e}"));
            return finish(out);
        }
    };
    // An address needs no lookup, so no timer either (this runs per request).
    let resolved = match parsed.host {
        Host::Ip(_) => Ok(choose_address(module, &parsed, &mut out).await),
        _ => tokio::time::timeout(budget, choose_address(module, &parsed, &mut out)).await,
    };
    let Ok(Some(ip)) = resolved else {
        if resolved.is_err() {
            out.note(|| "Error resolving address: timed out".into());
        }
        return finish(out);
    };
    out.note(|| format!("Resolved target address ip={ip}"));
    let address = Target {
        host: Host::Ip(ip),
        port: parsed.port,
    };
    let remaining = budget
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(1));
    // The module's own limits (a blackbox module has none), within what the scrape leaves.
    let mut spec = module.template.clone();
    spec.target = address;
    spec.family = Family::Any;
    spec.limits.deadline = remaining;
    spec.limits.connect_timeout = spec.limits.connect_timeout.min(remaining);
    spec.limits.idle_timeout = spec.limits.idle_timeout.min(remaining);
    if module.reports_tls() {
        // tls_config.server_name, else the hostname parameter (as later blackbox versions
        // do; 0.23 ignores it for tcp), else the target's host name (an address sends none
        // and is verified against the certificate's IP entries, as Go does).
        spec.tls.sni = spec
            .tls
            .sni
            .take()
            .or_else(|| hostname.map(str::to_string))
            .or_else(|| match &parsed.host {
                Host::Name(_) => Some(parsed.host.to_string()),
                Host::Ip(_) => None,
            });
    }
    let probe = match &module.tls_client {
        None => Probe::new(spec),
        Some(Ok(client)) => Probe::with_tls_client(spec, client),
        Some(Err(e)) => {
            out.note(|| format!("Error creating TLS configuration: {e}"));
            return finish(out);
        }
    };
    let probe = match probe {
        Ok(p) => p,
        Err(e) => {
            out.note(|| format!("Error setting up the probe: {e}"));
            return finish(out);
        }
    };
    let mut result = if debug {
        probe.run_traced().await
    } else {
        probe.run().await
    };
    for event in &result.transcript {
        out.note(|| dialog_line(module, event));
    }
    let message = std::mem::take(&mut result.message);
    out.note(|| message);
    // A warning (a native module's response-time or certificate-age threshold) still
    // answered correctly: blackbox has no warning state, so it counts as success.
    out.success = matches!(
        result.state,
        portwarden_probe::State::Ok | portwarden_probe::State::Warning
    );
    // Set only when the answer itself proved an expectation wrong: blackbox's line reader
    // reached the end of the connection without a matching line (or a native module's
    // matcher decided the data can no longer match); a deadline, a reset or a TLS failure
    // while waiting leave it 0, as in blackbox.
    out.failed_due_to_regex = result.expect_end.is_some_and(ExpectEnd::answer_was_wrong);
    if module.reports_tls() {
        // Set once the handshake succeeded (at connect or at the starttls step), as
        // blackbox registers them then; a later failure keeps them.
        if let Some(t) = result.tls {
            out.tls = Some(TlsGauges {
                earliest_expiry: t.earliest_expiry_unix as f64,
                last_chain_expiry: t
                    .verified_chain_expiry_unix
                    .map_or(GO_ZERO_TIME, |e| e as f64),
                version: tls_version_name(&t.version),
                fingerprint: t.leaf_sha256,
                subject: t.leaf_subject_rfc2253,
                issuer: t.leaf_issuer_rfc2253,
                dns_names: t.leaf_dns_names.join(","),
            });
        }
    }
    finish(out)
}

/// One dialog event of a traced probe as a `debug=true` log line, in blackbox's words where
/// it has them, naming the `query_response` entry (or, for a native module, the step).
fn dialog_line(module: &TcpModule, event: &DialogEvent) -> String {
    let step = match event {
        DialogEvent::Sent { step, .. }
        | DialogEvent::Matched { step, .. }
        | DialogEvent::Unmatched { step, .. }
        | DialogEvent::TlsStarted { step, .. } => *step,
    };
    let place = match module.entries.get(step) {
        Some(entry) => format!("entry_number={entry}"),
        None => format!("step={}", step + 1),
    };
    match event {
        DialogEvent::Sent { data, .. } => format!("Sending line {place} line=\"{data}\""),
        DialogEvent::Matched {
            expectation, used, ..
        } => format!("Regexp matched {place} expect=\"{expectation}\" read=\"{used}\""),
        DialogEvent::Unmatched {
            expectation,
            received,
            end,
            ..
        } => {
            let why = match end {
                ExpectEnd::Closed => "Regexp did not match before the connection closed",
                ExpectEnd::Mismatch => "Regexp did not match",
                ExpectEnd::Deadline | ExpectEnd::Idle => {
                    "Error reading from connection: timed out still waiting"
                }
                ExpectEnd::MaxBytes => "Error reading from connection: too much data",
                ExpectEnd::ReadError => "Error reading from connection",
            };
            format!("{why} {place} expect=\"{expectation}\" received=\"{received}\"")
        }
        DialogEvent::TlsStarted { version, .. } => {
            format!("TLS Handshake (client) succeeded {place} version={version}")
        }
    }
}

/// blackbox's `chooseProtocol`: the first address of the preferred family, else (with
/// fallback) the first of the other; sets the DNS time, protocol and address hash.
async fn choose_address(module: &TcpModule, target: &Target, out: &mut Outcome) -> Option<IpAddr> {
    let started = Instant::now();
    let addrs: Vec<IpAddr> = match &target.host {
        Host::Ip(ip) => vec![*ip],
        other => match tokio::net::lookup_host(format!("{other}:0")).await {
            Ok(a) => a.map(|s: SocketAddr| s.ip()).collect(),
            Err(e) => {
                out.dns_lookup = started.elapsed().as_secs_f64();
                out.note(|| format!("Error resolving address: {e}"));
                return None;
            }
        },
    };
    out.dns_lookup = started.elapsed().as_secs_f64();
    let preferred = addrs.iter().find(|a| a.is_ipv6() == module.prefer_v6);
    let chosen = match preferred {
        Some(a) => Some(*a),
        None if module.fallback => addrs.first().copied(),
        None => None,
    };
    let Some(ip) = chosen else {
        out.note(|| "Error resolving address: no suitable address found".into());
        return None;
    };
    out.ip_protocol = if ip.is_ipv6() { 6.0 } else { 4.0 };
    out.ip_hash = f64::from(ip_hash(ip));
    Some(ip)
}

/// FNV-1a (32 bit) of the address's bytes (4 for IPv4), as blackbox's `ipHash`.
fn ip_hash(ip: IpAddr) -> u32 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Go's `tls.VersionName` style, as blackbox labels it.
fn tls_version_name(engine: &str) -> &'static str {
    match engine {
        "TLSv1.3" => "TLS 1.3",
        "TLSv1.2" => "TLS 1.2",
        "TLSv1.1" => "TLS 1.1",
        "TLSv1.0" => "TLS 1.0",
        _ => "unknown",
    }
}

impl Outcome {
    /// Adds a line to the debug log; the line is not even made without `debug=true`.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.debug {
            self.log.push(line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hash_matches_blackbox_for_loopback() {
        // blackbox 0.23 printed probe_ip_addr_hash 3.668918509e+09 for 127.0.0.1.
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
    }
}
