//! `[[notifier]]`s into the `portwarden-notify` crate's specs (names unique, the dispatcher's own
//! keys taken out first), and every `notify = [...]` list checked against their names.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::Issues;
use crate::config::error::SourceFile;
use crate::config::parse::{NotifierEntry, Section};
use crate::config::{NotifierConfig, Problems};

pub(super) fn check_notifiers(
    notifiers: &[Section<NotifierEntry>],
    files: &[SourceFile],
    problems: &mut Problems,
) -> Vec<NotifierConfig> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, (usize, Range<usize>)> = HashMap::new();
    for section in notifiers {
        let Some(n) = &section.value else { continue };
        let mut issues = Issues::default();
        let name = match &n.name {
            None => {
                issues.add(
                    section.span.clone(),
                    "name",
                    "missing; every notifier needs a name",
                );
                None
            }
            Some(name) if name.get_ref().trim().is_empty() => {
                issues.add(name.span(), "name", "must not be empty");
                None
            }
            Some(name) => Some(name),
        };
        let kind = match &n.kind {
            None => {
                issues.add(
                    section.span.clone(),
                    "type",
                    "missing; say which kind of notifier this is, e.g. type = \"smtp\"",
                );
                None
            }
            Some(kind) if kind.get_ref().trim().is_empty() => {
                issues.add(kind.span(), "type", "must not be empty");
                None
            }
            Some(kind) => Some(kind),
        };
        if let Some(name) = name {
            if let Some((first_file, first_span)) = seen.get(name.get_ref()) {
                issues.add(
                    name.span(),
                    "name",
                    format!(
                        "duplicate notifier name, first defined at {}",
                        files[*first_file].place(first_span)
                    ),
                );
            } else {
                seen.insert(name.get_ref().clone(), (section.file, name.span()));
                if let Some(kind) = kind {
                    if let Some(config) = notifier_config(name.get_ref(), kind, n, &mut issues) {
                        out.push(config);
                    }
                }
            }
        }
        issues.report(section, files, problems);
    }
    out
}

/// The notifier's own keys into the `portwarden-notify` crate's types; the dispatcher's keys
/// (`remind_every`, `group_window`, `group_wait`) are taken out first.
fn notifier_config(
    name: &str,
    kind: &Spanned<String>,
    entry: &NotifierEntry,
    issues: &mut Issues,
) -> Option<NotifierConfig> {
    let mut table = entry.settings.clone();
    let mut duration = |key: &str| -> Result<Option<Duration>, ()> {
        match table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => match crate::config::duration::parse(&text) {
                Ok(d) => Ok(Some(d)),
                Err(e) => {
                    issues.add(kind.span(), key, e);
                    Err(())
                }
            },
            Some(other) => {
                issues.add(
                    kind.span(),
                    key,
                    format!("must be a duration string like \"30s\", got {other}"),
                );
                Err(())
            }
        }
    };
    let remind_every = duration("remind_every");
    let group_window = duration("group_window");
    let group_wait = duration("group_wait");
    table.insert("type".into(), toml::Value::String(kind.get_ref().clone()));
    let spec = match <portwarden_notify::NotifierSpec as serde::Deserialize>::deserialize(
        toml::Value::Table(table),
    ) {
        Ok(spec) => spec,
        Err(e) => {
            // serde's own words name the key and list the valid ones ("unknown field `colour`,
            // expected one of `url`, …"); only the type gets its key in front.
            let message = e.message();
            let path = if message.starts_with("unknown variant") {
                "type"
            } else {
                ""
            };
            issues.add(
                kind.span(),
                path,
                message.replace("unknown variant", "unknown type"),
            );
            return None;
        }
    };
    if let Err(e) = portwarden_notify::Notifier::new(name, spec.clone()) {
        issues.add(kind.span(), "", e);
        return None;
    }
    let (Ok(remind_every), Ok(group_window), Ok(group_wait)) =
        (remind_every, group_window, group_wait)
    else {
        return None;
    };
    if remind_every.is_some_and(|d| d.is_zero()) {
        issues.add(kind.span(), "remind_every", "must be greater than 0");
        return None;
    }
    Some(NotifierConfig {
        name: name.to_string(),
        remind_every: remind_every.or_else(|| crate::config::default_remind_every(&spec)),
        group_window: group_window.unwrap_or_else(|| crate::config::default_group_window(&spec)),
        group_wait: group_wait.unwrap_or(crate::config::DEFAULT_GROUP_WAIT),
        spec,
    })
}

pub(super) fn notify_list(
    list: &Spanned<Vec<Spanned<String>>>,
    notifiers: &BTreeSet<&str>,
    issues: &mut Issues,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in list.get_ref() {
        if !notifiers.contains(n.get_ref().as_str()) {
            let hint = crate::config::parse::suggest(n.get_ref(), notifiers.iter().copied())
                .map(|s| format!("did you mean {s:?}? "))
                .unwrap_or_default();
            issues.add(
                n.span(),
                "notify",
                format!(
                    "no notifier named {:?}; {hint}define it with [[notifier]]",
                    n.get_ref()
                ),
            );
        } else if !out.contains(n.get_ref()) {
            out.push(n.get_ref().clone());
        }
    }
    out
}
