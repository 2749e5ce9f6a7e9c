//! The Prometheus text format of one probe's [`Outcome`], as blackbox's registry writes it:
//! pure text, no I/O.

use std::fmt::Write as _;

/// What one probe found, as blackbox's gauges.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) success: bool,
    pub(super) duration: f64,
    pub(super) dns_lookup: f64,
    pub(super) ip_protocol: f64,
    pub(super) ip_hash: f64,
    pub(super) failed_due_to_regex: bool,
    pub(super) tls: Option<TlsGauges>,
    /// Whether the request asked for `debug=true`: only then is `log` written.
    pub(super) debug: bool,
    pub(super) log: Vec<String>,
}

#[derive(Debug)]
pub(super) struct TlsGauges {
    pub(super) earliest_expiry: f64,
    pub(super) last_chain_expiry: f64,
    pub(super) version: &'static str,
    /// `probe_ssl_last_chain_info`'s labels: the leaf's SHA-256, subject and issuer as Go
    /// writes them, its DNS names joined by `,`.
    pub(super) fingerprint: String,
    pub(super) subject: String,
    pub(super) issuer: String,
    pub(super) dns_names: String,
}

impl Outcome {
    /// The Prometheus text format, metric families in name order as Go's registry writes
    /// them. Written straight into one buffer: this runs for every request.
    pub(super) fn exposition(&self) -> String {
        let mut text = String::with_capacity(1536);
        let flag = |b: bool| f64::from(u8::from(b));
        gauge(
            &mut text,
            "probe_dns_lookup_time_seconds",
            "Returns the time taken for probe dns lookup in seconds",
            &[],
            self.dns_lookup,
        );
        gauge(
            &mut text,
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            &[],
            self.duration,
        );
        gauge(
            &mut text,
            "probe_failed_due_to_regex",
            "Indicates if probe failed due to regex",
            &[],
            flag(self.failed_due_to_regex),
        );
        gauge(
            &mut text,
            "probe_ip_addr_hash",
            "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
            &[],
            self.ip_hash,
        );
        gauge(
            &mut text,
            "probe_ip_protocol",
            "Specifies whether probe ip protocol is IP4 or IP6",
            &[],
            self.ip_protocol,
        );
        if let Some(t) = &self.tls {
            // 0.23's texts, word for word (its constants swapped the meanings).
            gauge(
                &mut text,
                "probe_ssl_earliest_cert_expiry",
                "Returns last SSL chain expiry in unixtime",
                &[],
                t.earliest_expiry,
            );
            gauge(
                &mut text,
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "Returns last SSL chain expiry in timestamp",
                &[],
                t.last_chain_expiry,
            );
            gauge(
                &mut text,
                "probe_ssl_last_chain_info",
                "Contains SSL leaf certificate information",
                &[
                    ("fingerprint_sha256", &t.fingerprint),
                    ("issuer", &t.issuer),
                    ("subject", &t.subject),
                    ("subjectalternative", &t.dns_names),
                ],
                1.0,
            );
        }
        gauge(
            &mut text,
            "probe_success",
            "Displays whether or not the probe was a success",
            &[],
            flag(self.success),
        );
        if let Some(t) = &self.tls {
            gauge(
                &mut text,
                "probe_tls_version_info",
                "Returns the TLS version used or NaN when unknown",
                &[("version", t.version)],
                1.0,
            );
        }
        text
    }
}

/// One gauge family with one sample: `# HELP`, `# TYPE` and the sample line.
fn gauge(out: &mut String, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
    for part in [
        "# HELP ",
        name,
        " ",
        help,
        "\n# TYPE ",
        name,
        " gauge\n",
        name,
    ] {
        out.push_str(part);
    }
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            push_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_go_float(out, value);
    out.push('\n');
}

/// A label value escaped for the text format: `\`, `"` and newlines.
fn push_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, the text format's number style.
fn push_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Rust's shortest round-trip digits in Go's layout: plain for exponents -4 to 5 (Go's
    // 'g' with the shortest precision), else `d.ddde±XX`.
    let start = out.len();
    let _ = write!(out, "{v:e}");
    let Some(e_at) = out[start..].find('e').map(|i| start + i) else {
        return;
    };
    let exp: i32 = out[e_at + 1..].parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        out.truncate(start);
        let _ = write!(out, "{v}");
    } else {
        out.truncate(e_at + 1);
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.abs());
    }
}

#[cfg(test)]
fn go_float(v: f64) -> String {
    let mut s = String::new();
    push_go_float(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::super::tcp::GO_ZERO_TIME;
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(3_668_918_509.0), "3.668918509e+09");
        assert_eq!(go_float(1.9079e-05), "1.9079e-05");
        assert_eq!(go_float(0.00051675), "0.00051675");
        assert_eq!(go_float(4.0), "4");
        assert_eq!(go_float(GO_ZERO_TIME), "-6.21355968e+10");
    }

    #[test]
    fn last_chain_info_labels_are_escaped_for_the_text_format() {
        let mut escaped = String::new();
        push_label_value(&mut escaped, r#"CN=a\,b "q""#);
        assert_eq!(escaped, r#"CN=a\\,b \"q\""#);
        let out = Outcome {
            tls: Some(TlsGauges {
                earliest_expiry: 1.0,
                last_chain_expiry: 1.0,
                version: "TLS 1.3",
                fingerprint: "ab".into(),
                subject: "CN=x".into(),
                issuer: "CN=ca".into(),
                dns_names: "x,y".into(),
            }),
            ..Outcome::default()
        };
        assert!(out.exposition().contains(
            "probe_ssl_last_chain_info{fingerprint_sha256=\"ab\",issuer=\"CN=ca\",subject=\"CN=x\",subjectalternative=\"x,y\"} 1\n"
        ));
    }
}
