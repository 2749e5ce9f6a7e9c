//! HTTP/1.x: `HEAD /` and a well-formed status line. Any status counts: a 404, a 301 or a
//! 503 all prove that an HTTP server answers on the port; judging the status belongs to an
//! HTTP check, not to a port check. HTTP on 80, HTTPS (implicit TLS) on 443.
//!
//! `Connection: close` makes the server end the session after its reply, so there is
//! nothing to send as a quit; the empty quit makes the engine wait for that close instead
//! of resetting the connection.

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::spec::Step;

/// The shape of a status line up to the end of the code: `d` stands for any ASCII digit.
const STATUS_SHAPE: &[u8] = b"HTTP/d.d ddd";

/// Matches `HTTP/<d>.<d> <ddd>` followed by a space (reason phrase) or the line's end;
/// refuses at the first byte that breaks that shape.
fn status_line(data: &[u8]) -> Verdict {
    for (i, &want) in STATUS_SHAPE.iter().enumerate() {
        let Some(&got) = data.get(i) else {
            return Verdict::Undecided;
        };
        let fits = if want == b'd' {
            got.is_ascii_digit()
        } else {
            got == want
        };
        if !fits {
            return Verdict::Mismatch;
        }
    }
    match data.get(STATUS_SHAPE.len()) {
        None => Verdict::Undecided,
        Some(b' ' | b'\r' | b'\n') => Verdict::Matched,
        Some(_) => Verdict::Mismatch,
    }
}

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    // An IPv6 address in a Host header needs brackets (RFC 9110 §7.2).
    let host = if ctx.host.contains(':') {
        format!("[{}]", ctx.host)
    } else {
        ctx.host.to_string()
    };
    let request = format!(
        "HEAD / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: portwarden\r\nConnection: close\r\n\r\n"
    );
    vec![
        Step::Send(request.into_bytes()),
        expect_reply("http status line HTTP/1.x NNN", status_line),
    ]
}

/// HTTP on 80.
pub const HTTP: Preset = Preset {
    name: "http",
    aliases: &[],
    summary: "HTTP: HEAD / answered by any well-formed HTTP/1.x status line",
    default_port: 80,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: Some(b""),
};

/// HTTPS (implicit TLS) on 443.
pub const HTTPS: Preset = Preset {
    name: "https",
    aliases: &[],
    summary: "HTTPS: HEAD / over TLS answered by any HTTP/1.x status line",
    default_port: 443,
    implicit_tls: true,
    ..HTTP
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_status_code_matches() {
        assert_eq!(status_line(b"HTTP/1.1 200 OK\r\n"), Verdict::Matched);
        assert_eq!(status_line(b"HTTP/1.0 404 Not Found\r\n"), Verdict::Matched);
        assert_eq!(status_line(b"HTTP/1.1 503\r\n"), Verdict::Matched);
        assert_eq!(status_line(b"HTTP/1.1 301 "), Verdict::Matched);
    }

    #[test]
    fn waits_for_the_byte_after_the_code() {
        assert_eq!(status_line(b""), Verdict::Undecided);
        assert_eq!(status_line(b"HTTP/1"), Verdict::Undecided);
        assert_eq!(status_line(b"HTTP/1.1 20"), Verdict::Undecided);
        assert_eq!(status_line(b"HTTP/1.1 200"), Verdict::Undecided);
    }

    #[test]
    fn refuses_garbage_at_its_first_wrong_byte() {
        assert_eq!(status_line(b"X"), Verdict::Mismatch);
        assert_eq!(
            status_line(b"-ERR unknown command 'HEAD'\r\n"),
            Verdict::Mismatch
        );
        assert_eq!(status_line(b"HTTP/x"), Verdict::Mismatch);
        assert_eq!(status_line(b"HTTP/1.1 2x0 OK\r\n"), Verdict::Mismatch);
        assert_eq!(status_line(b"HTTP/1.1 2000 OK\r\n"), Verdict::Mismatch);
        assert_eq!(status_line(b"http/1.1 200 OK\r\n"), Verdict::Mismatch);
        assert_eq!(status_line(b"SSH-2.0-OpenSSH\r\n"), Verdict::Mismatch);
    }

    #[test]
    fn request_names_the_host_and_asks_to_close() {
        let ctx = PresetContext {
            host: "::1",
            starttls: false,
        };
        let steps = dialog(&ctx);
        let Some(Step::Send(request)) = steps.first() else {
            panic!("the dialog starts with the request");
        };
        let text = String::from_utf8_lossy(request);
        assert!(
            text.starts_with("HEAD / HTTP/1.0\r\nHost: [::1]\r\n"),
            "{text}"
        );
        assert!(text.ends_with("Connection: close\r\n\r\n"), "{text}");
    }
}
