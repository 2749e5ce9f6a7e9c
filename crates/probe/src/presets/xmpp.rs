//! XMPP client connections (RFC 6120): we open a stream, the server answers with its own
//! stream header (`<?xml ...?>` first, or directly `<stream:stream ...>`); `</stream:stream>`
//! closes it. A server that does not serve the domain still opens its stream before the
//! `host-unknown` stream error, so that too proves XMPP answers.
//!
//! No STARTTLS here: XMPP negotiates it inside the stream, after stream features, which
//! the engine's STARTTLS protocols do not cover.

use super::{expect_reply, Preset, PresetContext};
use crate::expect::Verdict;
use crate::reply;
use crate::spec::Step;

/// Matches a reply that opens an XML stream; leading whitespace is skipped.
fn stream_header(data: &[u8]) -> Verdict {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    reply::starts_with_any(&data[start..], &[b"<?xml", b"<stream:stream"])
}

fn dialog(ctx: &PresetContext<'_>) -> Vec<Step> {
    let open = format!(
        "<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        ctx.host
    );
    vec![
        Step::Send(open.into_bytes()),
        expect_reply("xmpp stream header", stream_header),
    ]
}

/// XMPP client-to-server on 5222 (check_tcp's `jabber`).
pub const XMPP: Preset = Preset {
    name: "xmpp",
    aliases: &["jabber"],
    summary: "XMPP client connections: the server opens its stream",
    default_port: 5222,
    implicit_tls: false,
    starttls: None,
    dialog,
    quit: Some(b"</stream:stream>"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_openings_match() {
        assert_eq!(
            stream_header(b"<?xml version='1.0'?><stream:stream from='example.org'"),
            Verdict::Matched
        );
        assert_eq!(
            stream_header(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'"),
            Verdict::Matched
        );
        assert_eq!(stream_header(b"\n<?xml "), Verdict::Matched);
    }

    #[test]
    fn partial_openings_wait() {
        assert_eq!(stream_header(b""), Verdict::Undecided);
        assert_eq!(stream_header(b"  "), Verdict::Undecided);
        assert_eq!(stream_header(b"<"), Verdict::Undecided);
        assert_eq!(stream_header(b"<stream:str"), Verdict::Undecided);
    }

    #[test]
    fn anything_else_fails_at_once() {
        assert_eq!(
            stream_header(b"HTTP/1.1 400 Bad Request\r\n"),
            Verdict::Mismatch
        );
        assert_eq!(stream_header(b"<html>"), Verdict::Mismatch);
        assert_eq!(stream_header(b"-ERR"), Verdict::Mismatch);
        assert_eq!(stream_header(b"\x15\x03\x03\x00\x02"), Verdict::Mismatch);
    }

    #[test]
    fn stream_is_addressed_to_the_host() {
        let steps = dialog(&PresetContext {
            host: "chat.example.org",
            starttls: false,
        });
        let Some(Step::Send(open)) = steps.first() else {
            panic!("the dialog starts by opening the stream");
        };
        let open = String::from_utf8_lossy(open);
        assert!(open.contains("to='chat.example.org'"), "{open}");
        assert!(
            open.starts_with("<?xml version='1.0'?><stream:stream "),
            "{open}"
        );
    }
}
