//! `[firewall]` into [`FirewallSettings`]: backend, required rules and tables, baseline,
//! what to do on a violation, and whom to notify.

use std::collections::BTreeSet;
use std::path::Path;

use super::notifiers::notify_list;
use super::values::{count32, positive, resolve_path};
use super::Issues;
use crate::config::schema::FirewallSection;
use crate::config::{FirewallSettings, OnViolation};

pub(super) fn firewall_settings(
    f: &FirewallSection,
    base: &Path,
    notifiers: &BTreeSet<&str>,
    default_notify: &[String],
    issues: &mut Issues,
) -> FirewallSettings {
    let mut out = FirewallSettings {
        notify: default_notify.to_vec(),
        ..FirewallSettings::default()
    };
    if let Some(guard) = f.guard {
        out.guard = guard;
    }
    if let Some(watch) = f.watch {
        out.watch = watch;
    }
    if let Some(name) = &f.backend {
        match name.get_ref().as_str() {
            "auto" => {}
            other => match portwarden_firewall::BackendKind::from_name(other) {
                Some(kind) => out.backend = Some(kind),
                None => {
                    let names = portwarden_firewall::BackendKind::ALL.map(|k| k.name());
                    let hint = crate::config::parse::suggest(other, names.iter().copied())
                        .map(|s| format!("did you mean {s:?}? "))
                        .unwrap_or_default();
                    issues.add(
                        name.span(),
                        "backend",
                        format!(
                            "unknown backend {other:?}; {hint}expected \"auto\" or one of {}",
                            names.join(", ")
                        ),
                    );
                }
            },
        }
    }
    if let Some(list) = &f.require {
        out.policy.require.clear();
        for (i, item) in list.get_ref().iter().enumerate() {
            match item.get_ref().parse::<portwarden_firewall::Requirement>() {
                Ok(r) if !out.policy.require.contains(&r) => out.policy.require.push(r),
                Ok(_) => {}
                Err(e) => issues.add(item.span(), format!("require[{i}]"), e),
            }
        }
    }
    if let Some(list) = &f.rules {
        for (i, item) in list.get_ref().iter().enumerate() {
            match item.get_ref().parse::<portwarden_firewall::RequiredRule>() {
                Ok(r) => out.policy.rules.push(r),
                Err(e) => issues.add(item.span(), format!("rules[{i}]"), e),
            }
        }
    }
    if let Some(list) = &f.tables {
        let mut tables = Vec::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let words: Vec<&str> = item.get_ref().split_whitespace().collect();
            match words.as_slice() {
                [family @ ("ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev"), name] => {
                    tables.push(format!("{family} {name}"))
                }
                _ => issues.add(
                    item.span(),
                    format!("tables[{i}]"),
                    format!(
                        "{:?} is not a table; write \"FAMILY NAME\", e.g. \"inet filter\" \
                         (families: ip, ip6, inet, arp, bridge, netdev)",
                        item.get_ref()
                    ),
                ),
            }
        }
        out.tables = Some(tables);
    }
    if let Some(path) = &f.baseline {
        if let Some(p) = resolve_path(base, path, "baseline", issues) {
            out.baseline = p;
        }
    }
    if let Some(mode) = &f.on_violation {
        out.on_violation = match mode.get_ref().as_str() {
            "alert" => Some(OnViolation::Alert),
            "enable" => Some(OnViolation::Enable),
            "restore" => Some(OnViolation::Restore),
            other => {
                issues.add(
                    mode.span(),
                    "on_violation",
                    format!(
                        "unknown mode {other:?}; expected \"alert\", \"enable\" or \"restore\""
                    ),
                );
                None
            }
        };
    }
    if let Some(d) = positive(&f.verify_every, "verify_every", issues) {
        out.verify_every = d;
    }
    if let Some(n) = count32(&f.max_repairs_per_hour, "max_repairs_per_hour", 0, issues) {
        out.max_repairs_per_hour = n;
    }
    if let Some(list) = &f.notify {
        out.notify = notify_list(list, notifiers, issues);
    }
    out
}
