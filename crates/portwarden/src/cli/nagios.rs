//! check_tcp's output format: `SERVICE STATE - text|perfdata`, one line.

use std::fmt::Write as _;
use std::time::Duration;

use portwarden_probe::{ProbeResult, Reason};

use super::check::Report;

/// Renders the status line (plus detail lines with -v), newline-terminated.
pub(super) fn render(report: &Report, result: &ProbeResult) -> String {
    let state = result.state;
    let where_ = match &report.host_label {
        Some(host) => format!("{host} port {}", report.port),
        None => format!("port {}", report.port),
    };
    let seconds = result.timings.total.as_secs_f64();
    let mut line = format!("{} {} - ", report.service, state);
    match result.reason {
        None if result.peer.is_none() => line.push_str(&result.message),
        None | Some(Reason::SlowResponse) => {
            let _ = write!(line, "{seconds:.3} second response time on {where_}");
            push_response(&mut line, report, result);
            push_cert(&mut line, result);
            line.push_str(&perfdata(report, result.timings.total, false));
        }
        Some(Reason::CertificateExpiring) => {
            line.push_str(&cert_text(result));
            line.push_str(&perfdata(report, result.timings.total, false));
        }
        Some(Reason::UnexpectedResponse) => {
            let received = trim_escaped_whitespace(&result.received);
            if report.jail || received.is_empty() {
                let _ = write!(line, "Unexpected response from host/socket on {where_}");
            } else {
                let _ = write!(line, "Unexpected response from host/socket: {received}");
            }
            line.push_str(&perfdata(report, result.timings.total, true));
        }
        Some(Reason::Refused) => {
            let _ = write!(
                line,
                "connect to address {} and port {}: Connection refused",
                refused_address(result),
                report.port
            );
        }
        Some(Reason::ConnectTimeout | Reason::ReadTimeout) => {
            let _ = write!(
                line,
                "Socket timeout after {} seconds ({})",
                format_secs(report.timeout),
                result.message
            );
        }
        Some(Reason::NoData) => line.push_str("No data received from host"),
        Some(Reason::TlsFailure) => {
            let _ = write!(line, "Cannot make SSL connection: {}", result.message);
        }
        Some(Reason::ResolutionFailed) => {
            let _ = write!(
                line,
                "Invalid hostname, address or socket: {}",
                result.message
            );
        }
        Some(
            Reason::WrongOwner
            | Reason::OwnerUnknown
            | Reason::ConnectFailed
            | Reason::Reset
            | Reason::StarttlsRefused
            | Reason::MustBeClosedButOpen
            | Reason::InvalidSetup
            | Reason::LocalResources,
        ) => line.push_str(&result.message),
    }
    line.push('\n');
    if report.verbose > 0 {
        push_details(&mut line, result);
    }
    line
}

/// `[response]` after the response time, as check_tcp shows it when it read something.
fn push_response(line: &mut String, report: &Report, result: &ProbeResult) {
    if report.jail || !report.shows_response {
        return;
    }
    let received = trim_escaped_whitespace(&result.received);
    if !received.is_empty() {
        let _ = write!(line, " [{received}]");
    }
}

fn push_cert(line: &mut String, result: &ProbeResult) {
    if let Some(tls) = &result.tls {
        let _ = write!(
            line,
            ", {} certificate '{}' expires in {} day(s) ({})",
            tls.version,
            common_name(&tls.subject),
            tls.days_left,
            tls.not_after
        );
    }
}

fn cert_text(result: &ProbeResult) -> String {
    match &result.tls {
        Some(tls) if tls.days_left < 0 => format!(
            "Certificate '{}' expired on {}",
            common_name(&tls.subject),
            tls.not_after
        ),
        Some(tls) => format!(
            "Certificate '{}' expires in {} day(s) ({})",
            common_name(&tls.subject),
            tls.days_left,
            tls.not_after
        ),
        None => result.message.clone(),
    }
}

/// `|time=0.000829s;WARN;CRIT;0.000000;TIMEOUT`, as check_tcp's fperfdata prints it. On a
/// mismatch check_tcp prints set thresholds as 0; we keep that.
fn perfdata(report: &Report, total: Duration, mismatch: bool) -> String {
    let threshold = |t: Option<Duration>| match t {
        Some(_) if mismatch => "0.000000".to_string(),
        Some(d) => format!("{:.6}", d.as_secs_f64()),
        None => String::new(),
    };
    format!(
        "|time={:.6}s;{};{};0.000000;{:.6}",
        total.as_secs_f64(),
        threshold(report.warning),
        threshold(report.critical),
        report.timeout.as_secs_f64()
    )
}

fn push_details(out: &mut String, result: &ProbeResult) {
    let _ = writeln!(out, "{}", result.message);
    if let Some(peer) = result.peer {
        let _ = writeln!(out, "peer: {peer}");
    }
    for a in &result.failed_attempts {
        let _ = writeln!(out, "failed: {} ({}): {}", a.addr, a.reason, a.error);
    }
    let t = &result.timings;
    let ms = |d: Option<Duration>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.3} ms", d.as_secs_f64() * 1e3)
        })
    };
    let _ = writeln!(
        out,
        "timings: resolve {}, connect {}, tls {}, first byte {}, total {}",
        ms(t.resolve),
        ms(t.connect),
        ms(t.tls),
        ms(t.first_byte),
        ms(Some(t.total))
    );
    if let Some(tls) = &result.tls {
        let _ = writeln!(
            out,
            "tls: {} {}, subject {}, issuer {}, not after {}, verified {}",
            tls.version, tls.cipher, tls.subject, tls.issuer, tls.not_after, tls.verified
        );
    }
    let _ = writeln!(
        out,
        "received {} bytes: {}",
        result.bytes_received, result.received
    );
}

/// The address that refused: the last one tried.
fn refused_address(result: &ProbeResult) -> String {
    result
        .failed_attempts
        .last()
        .map_or_else(|| result.target.clone(), |a| a.addr.ip().to_string())
}

fn common_name(subject: &str) -> &str {
    subject
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("CN="))
        .unwrap_or(subject)
}

fn format_secs(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0}")
    } else {
        format!("{secs}")
    }
}

/// check_tcp strips trailing whitespace from the response; ours arrives escaped.
fn trim_escaped_whitespace(text: &str) -> &str {
    let mut t = text.trim_end();
    loop {
        let shorter = t
            .strip_suffix("\\r")
            .or_else(|| t.strip_suffix("\\n"))
            .or_else(|| t.strip_suffix("\\t"))
            .map(str::trim_end);
        match shorter {
            // An escaped backslash before `r` (`\\r`) is data, not a line ending.
            Some(s) if !s.ends_with('\\') || s.ends_with("\\\\") => t = s,
            _ => return t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_escaped_line_endings_only() {
        assert_eq!(trim_escaped_whitespace("220 ok\\r\\n"), "220 ok");
        assert_eq!(trim_escaped_whitespace("a\\r\\nb\\r\\n  "), "a\\r\\nb");
        assert_eq!(trim_escaped_whitespace("path\\\\r"), "path\\\\r");
        assert_eq!(trim_escaped_whitespace(""), "");
    }

    #[test]
    fn finds_the_common_name() {
        assert_eq!(common_name("C=DE, CN=mail.example.org"), "mail.example.org");
        assert_eq!(common_name("O=Acme"), "O=Acme");
    }
}
