//! The words of a notification: the default subject and body every channel uses
//! ([`render_subject`], [`render_body`]), and per-notifier overrides written as
//! [minijinja](https://docs.rs/minijinja) templates (`subject = "…"`, `body = "…"`), compiled and
//! trial-rendered in `Notifier::new` so a syntax error or an unknown variable is reported there.
//!
//! Defaults name the host, the monitor, the target, the reason, what was received, what
//! portwarden did and, for recoveries, how long the outage lasted:
//! `web on db1 is UP again after 4m 12s`. A group lists every item under a count line:
//! `12 monitors on db1 changed: 11 DOWN, 1 UP`.
//!
//! Variables a template sees:
//!
//! | name | value |
//! |---|---|
//! | `id`, `kind`, `host`, `at_ms` | the notification's fields (`kind` as in the config: `down`, `grouped`, …) |
//! | `at` | `at_ms` as RFC 3339 (UTC) |
//! | `items` | the items: every field of the item (`subject`, `target`, `status`, `reason`, `message`, `received`, `detail`, `action`, `down_for_secs`, `since_ms`, `tags`, `incident`; absent ones are `none`) plus `label` (`DOWN`), `headline` (the default one-line summary), `down_for` (`4m 12s` or none), `since` (RFC 3339 or none), `is_problem` |
//! | `item` | the first item (handy for single-event notifications), or none |
//! | `count`, `grouped`, `counts` | number of items, whether there are several, `11 DOWN, 1 UP` |
//! | `default_subject`, `default_body` | the default texts, to wrap rather than replace them |
//! | `notification` | the notification exactly as the webhook's JSON body |
//!
//! The `tojson` filter is there for JSON bodies: `{"text": {{ default_subject|tojson }}}`.

use std::fmt::Write as _;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{json, Value};

use crate::{one_line, Item, Kind, Notification};

/// Subject lines are cut to this many bytes.
const SUBJECT_MAX: usize = 250;

/// The default subject: one line.
pub fn render_subject(n: &Notification) -> String {
    let line = match n.items.as_slice() {
        [] => format!("portwarden on {}: {}", n.host, n.kind.label()),
        [item] if n.kind != Kind::Grouped || n.items.len() == 1 => headline(&n.host, item),
        _ => group_line(n),
    };
    one_line(&line, SUBJECT_MAX)
}

/// The default body: the facts of each item, then where it came from.
pub fn render_body(n: &Notification) -> String {
    let mut out = String::new();
    match n.items.as_slice() {
        [] => {
            let _ = writeln!(out, "{}", render_subject(n));
        }
        [item] => {
            let _ = writeln!(out, "{}", headline(&n.host, item));
            out.push('\n');
            facts(&mut out, item, "");
        }
        items => {
            let _ = writeln!(out, "{}", group_line(n));
            for item in items {
                out.push('\n');
                let _ = writeln!(out, "- {}", headline(&n.host, item));
                facts(&mut out, item, "    ");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n-- \nportwarden on {} at {} (notification {})",
        n.host,
        rfc3339(n.at_ms),
        n.id
    );
    out
}

/// `web on db1 is DOWN: refused`: the default one-line summary of one item.
pub fn headline(host: &str, item: &Item) -> String {
    let s = &item.subject;
    let why = item
        .reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .or_else(|| Some(item.message.as_str()).filter(|m| !m.is_empty()));
    let with = |base: String, extra: Option<&str>| match extra {
        Some(e) => format!("{base}: {e}"),
        None => base,
    };
    let line = match item.kind {
        Kind::Down => with(format!("{s} on {host} is DOWN"), why),
        Kind::Up => match item.down_for_secs {
            Some(secs) => format!("{s} on {host} is UP again after {}", format_duration(secs)),
            None => format!("{s} on {host} is UP again"),
        },
        Kind::Warning => with(format!("{s} on {host} has a WARNING"), why),
        Kind::Flapping => with(format!("{s} on {host} is FLAPPING"), why),
        Kind::Reminder => {
            let base = match item.down_for_secs {
                Some(secs) => format!(
                    "{s} on {host} is STILL DOWN after {}",
                    format_duration(secs)
                ),
                None => format!("{s} on {host} is STILL DOWN"),
            };
            with(base, why)
        }
        Kind::FirewallViolation => with(
            format!("{s} on {host} is VIOLATED"),
            non_empty(&item.message),
        ),
        Kind::FirewallRepaired => with(
            format!("{s} on {host} was REPAIRED"),
            item.action.as_deref().or(non_empty(&item.message)),
        ),
        Kind::FirewallRepairFailed => with(
            format!("{s} on {host}: REPAIR FAILED"),
            non_empty(&item.message),
        ),
        Kind::ActionTaken => with(
            format!("{s} on {host}"),
            item.action.as_deref().or(non_empty(&item.message)),
        ),
        Kind::ActionFailed => with(
            format!("{s} on {host}: ACTION FAILED"),
            non_empty(&item.message),
        ),
        Kind::GaveUp => format!("{s} on {host}: self-healing GAVE UP, a person must look"),
        Kind::Test => format!("test notification from portwarden on {host}"),
        Kind::Grouped => with(format!("{s} on {host}"), non_empty(&item.message)),
    };
    one_line(&line, SUBJECT_MAX)
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// `12 monitors on db1 changed: 11 DOWN, 1 UP`.
fn group_line(n: &Notification) -> String {
    let noun = if n.items.len() == 1 {
        "monitor"
    } else {
        "monitors"
    };
    format!(
        "{} {noun} on {} changed: {}",
        n.items.len(),
        n.host,
        counts(&n.items)
    )
}

/// `11 DOWN, 1 UP`, in order of first appearance.
fn counts(items: &[Item]) -> String {
    let mut seen: Vec<(&'static str, usize)> = Vec::new();
    for item in items {
        match seen.iter_mut().find(|(l, _)| *l == item.kind.label()) {
            Some((_, c)) => *c += 1,
            None => seen.push((item.kind.label(), 1)),
        }
    }
    seen.iter()
        .map(|(l, c)| format!("{c} {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The facts of one item, one per line, each prefixed by `indent`.
fn facts(out: &mut String, item: &Item, indent: &str) {
    let mut line = |name: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(out, "{indent}{name:<10}{value}");
        }
    };
    line("What:", &item.message);
    line("Monitor:", &item.subject);
    line("Target:", item.target.as_deref().unwrap_or(""));
    let status = match &item.reason {
        Some(r) if !r.is_empty() => format!("{} (reason: {r})", item.status),
        _ => item.status.clone(),
    };
    line("Status:", &status);
    line("Received:", item.received.as_deref().unwrap_or(""));
    line("Action:", item.action.as_deref().unwrap_or(""));
    if let Some(secs) = item.down_for_secs {
        line("Down for:", &format_duration(secs));
    }
    if let Some(ms) = item.since_ms {
        line("Since:", &rfc3339(ms));
    }
    line("Tags:", &item.tags.join(", "));
    line("Incident:", &item.incident);
    if let Some(detail) = item.detail.as_deref().filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "{indent}Detail:");
        for l in detail.lines() {
            let _ = writeln!(out, "{indent}  {l}");
        }
    }
}

/// `4m 12s`, `2h 5m`, `3d 4h`, `45s`: two units at most, for people.
pub fn format_duration(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    if secs == 0 {
        return "0s".to_string();
    }
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, name) in UNITS {
        if rest >= size {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // Keep the two units adjacent: `1h 0m`, not `1h 5s`.
            parts.push(format!("0{name}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// Unix milliseconds as RFC 3339 UTC (`2024-05-01T10:00:00.250Z`).
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{ms}ms"))
}

/// What a template sees (see the module docs).
pub fn context(n: &Notification) -> Value {
    let items: Vec<Value> = n
        .items
        .iter()
        .map(|item| {
            json!({
                "kind": item.kind.as_str(),
                "label": item.kind.label(),
                "subject": item.subject,
                "target": item.target,
                "status": item.status,
                "reason": item.reason,
                "message": item.message,
                "received": item.received,
                "detail": item.detail,
                "action": item.action,
                "down_for_secs": item.down_for_secs,
                "down_for": item.down_for_secs.map(format_duration),
                "since_ms": item.since_ms,
                "since": item.since_ms.map(rfc3339),
                "tags": item.tags,
                "incident": item.incident,
                "is_problem": item.kind.is_problem(),
                "headline": headline(&n.host, item),
            })
        })
        .collect();
    json!({
        "id": n.id,
        "kind": n.kind.as_str(),
        "host": n.host,
        "at_ms": n.at_ms,
        "at": rfc3339(n.at_ms),
        "item": items.first().cloned().unwrap_or(Value::Null),
        "items": items,
        "count": n.items.len(),
        "grouped": n.items.len() > 1,
        "counts": counts(&n.items),
        "default_subject": render_subject(n),
        "default_body": render_body(n),
        "notification": serde_json::to_value(n).unwrap_or(Value::Null),
    })
}

/// A per-notifier template override, checked when the notifier is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    what: &'static str,
    source: String,
}

impl Template {
    /// Compiles `source` and renders it once against sample notifications with undefined
    /// variables as errors, so typos are caught at start. `what` names the key in errors.
    pub fn compile(what: &'static str, source: &str) -> Result<Template, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.template_from_named_str(what, source)
            .map_err(|e| format!("{what} template: {}", describe(&e)))?;
        for sample in [sample(false), sample(true)] {
            env.render_named_str(what, source, context(&sample))
                .map_err(|e| format!("{what} template: {}", describe(&e)))?;
        }
        Ok(Template {
            what,
            source: source.to_string(),
        })
    }

    /// Renders for a real notification. Undefined values render empty here: a notification
    /// with a blank field beats none.
    pub fn render(&self, n: &Notification) -> Result<String, String> {
        let env = Environment::new();
        env.render_named_str(self.what, &self.source, context(n))
            .map_err(|e| format!("{} template: {}", self.what, describe(&e)))
    }
}

/// An optional subject and body override, with the defaults behind them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Texts {
    subject: Option<Template>,
    body: Option<Template>,
}

impl Texts {
    pub(crate) fn new(subject: Option<&str>, body: Option<&str>) -> Result<Texts, String> {
        Ok(Texts {
            subject: subject
                .map(|s| Template::compile("subject", s))
                .transpose()?,
            body: body.map(|s| Template::compile("body", s)).transpose()?,
        })
    }

    /// The subject line (one line, even when a template produced several).
    pub(crate) fn subject(&self, n: &Notification) -> Result<String, String> {
        match &self.subject {
            Some(t) => Ok(one_line(&t.render(n)?, SUBJECT_MAX)),
            None => Ok(render_subject(n)),
        }
    }

    pub(crate) fn body(&self, n: &Notification) -> Result<String, String> {
        match &self.body {
            Some(t) => t.render(n),
            None => Ok(render_body(n)),
        }
    }

    pub(crate) fn has_body(&self) -> bool {
        self.body.is_some()
    }
}

/// A minijinja error with its line (`syntax error: … (in body:1)`).
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// The notifications templates are tried on in `Template::compile`.
fn sample(grouped: bool) -> Notification {
    let item = |kind: Kind, subject: &str| Item {
        kind,
        subject: subject.to_string(),
        target: Some("127.0.0.1:80".to_string()),
        status: "down".to_string(),
        reason: Some("refused".to_string()),
        message: "connection refused".to_string(),
        received: Some("x".to_string()),
        detail: Some("x".to_string()),
        action: Some("x".to_string()),
        down_for_secs: Some(1),
        since_ms: Some(1),
        tags: vec!["x".to_string()],
        incident: format!("sample/{subject}"),
    };
    let items = if grouped {
        vec![item(Kind::Down, "web"), item(Kind::Up, "db")]
    } else {
        vec![item(Kind::Down, "web")]
    };
    Notification {
        id: "sample".to_string(),
        kind: if grouped { Kind::Grouped } else { Kind::Down },
        host: "sample".to_string(),
        at_ms: 1,
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: Kind, subject: &str) -> Item {
        Item {
            kind,
            subject: subject.to_string(),
            target: Some("10.0.0.5:80".to_string()),
            status: if kind == Kind::Up { "ok" } else { "down" }.to_string(),
            reason: (kind != Kind::Up).then(|| "refused".to_string()),
            message: "connection refused".to_string(),
            received: (kind == Kind::Down).then(|| "HTTP/1.0 503".to_string()),
            detail: None,
            action: (kind == Kind::Down).then(|| "restarted nginx.service".to_string()),
            down_for_secs: (kind == Kind::Up).then_some(252),
            since_ms: Some(1_714_557_600_000),
            tags: vec![],
            incident: format!("db1/{subject}"),
        }
    }

    fn single(kind: Kind) -> Notification {
        Notification {
            id: "n-1".to_string(),
            kind,
            host: "db1".to_string(),
            at_ms: 1_714_557_852_000,
            items: vec![item(kind, "web")],
        }
    }

    #[test]
    fn default_subject_names_monitor_host_and_reason() {
        assert_eq!(
            render_subject(&single(Kind::Down)),
            "web on db1 is DOWN: refused"
        );
        assert_eq!(
            render_subject(&single(Kind::Up)),
            "web on db1 is UP again after 4m 12s"
        );
    }

    #[test]
    fn default_body_carries_the_facts() {
        let body = render_body(&single(Kind::Down));
        for fact in [
            "web on db1 is DOWN: refused",
            "10.0.0.5:80",
            "connection refused",
            "HTTP/1.0 503",
            "restarted nginx.service",
            "2024-05-01T10:00:00Z",
            "db1/web",
            "notification n-1",
        ] {
            assert!(body.contains(fact), "{fact:?} missing from:\n{body}");
        }
    }

    #[test]
    fn grouped_notification_counts_and_lists_every_item() {
        let mut items: Vec<Item> = (0..11)
            .map(|i| item(Kind::Down, &format!("m{i}")))
            .collect();
        items.push(item(Kind::Up, "web"));
        let n = Notification {
            id: "g".to_string(),
            kind: Kind::Grouped,
            host: "db1".to_string(),
            at_ms: 0,
            items,
        };
        assert_eq!(
            render_subject(&n),
            "12 monitors on db1 changed: 11 DOWN, 1 UP"
        );
        let body = render_body(&n);
        assert!(body.starts_with("12 monitors on db1 changed: 11 DOWN, 1 UP\n"));
        for i in 0..11 {
            assert!(
                body.contains(&format!("- m{i} on db1 is DOWN: refused")),
                "{body}"
            );
        }
        assert!(body.contains("- web on db1 is UP again after 4m 12s"));
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(45), "45s");
        assert_eq!(format_duration(252), "4m 12s");
        assert_eq!(format_duration(3600), "1h 0m");
        assert_eq!(format_duration(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }

    #[test]
    fn overrides_render_with_the_notification() {
        let t = Template::compile(
            "subject",
            "[{{ host }}] {{ item.label }} {{ item.subject }} {{ counts }}",
        )
        .expect("compiles");
        assert_eq!(
            t.render(&single(Kind::Down)).expect("renders"),
            "[db1] DOWN web 1 DOWN"
        );
        let t = Template::compile(
            "body",
            "{% for i in items %}{{ i.subject }}={{ i.down_for or '-' }};{% endfor %}",
        )
        .expect("compiles");
        assert_eq!(t.render(&single(Kind::Up)).expect("renders"), "web=4m 12s;");
        let t = Template::compile("body", "{{ default_subject|tojson }}").expect("compiles");
        assert_eq!(
            t.render(&single(Kind::Down)).expect("renders"),
            "\"web on db1 is DOWN: refused\""
        );
    }

    #[test]
    fn broken_templates_are_refused_with_the_error() {
        let e = Template::compile("body", "{% for x in items %}").unwrap_err();
        assert!(e.starts_with("body template: syntax error"), "{e}");
        let e = Template::compile("subject", "{{ hots }}").unwrap_err();
        assert!(e.starts_with("subject template: undefined value"), "{e}");
    }

    #[test]
    fn subjects_stay_on_one_line_whatever_the_message_holds() {
        let mut n = single(Kind::Down);
        n.items[0].reason = None;
        n.items[0].message = "bad\r\nBcc: victim@example.com\u{0}\u{fffd}".to_string();
        let s = render_subject(&n);
        assert!(
            !s.contains('\n') && !s.contains('\r') && !s.contains('\0'),
            "{s:?}"
        );
    }
}
