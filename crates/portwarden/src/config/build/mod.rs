//! From typed sections to what the daemon runs: checks every value (all problems, each with
//! its place), applies `[defaults]` and the built-in defaults, and builds a prepared
//! [`portwarden_probe::Probe`] and a [`Monitor`](crate::monitor::Monitor) for each `[[monitor]]`.
//!
//! Checking is pure; only the last step, [`Probe::new`](portwarden_probe::Probe::new), touches
//! files (CA and client certificates), and only for monitors that passed every other check.
//!
//! [`assemble`] takes `[daemon]`, `[[notifier]]`, `[defaults]`, each `[[monitor]]`,
//! `[firewall]` and `[[probe_module]]`, in that order; each problem is collected as an
//! [`Issue`] with its key path and reported with its section's place. The modules:
//!
//! - [`daemon`]: `[daemon]` into [`DaemonSettings`];
//! - [`notifiers`]: `[[notifier]]`s into the `portwarden-notify` crate's specs, and every
//!   `notify` list checked against their names;
//! - [`defaults`]: `[defaults]` over the built-in defaults;
//! - [`monitor`]: each `[[monitor]]` into a [`Monitor`], step by step (name, protocol,
//!   target, probe dialog, TLS, timing, owner, policy, notify, heal ladder);
//! - [`probe_keys`]: the probe keys a monitor and a probe module share (TLS, dialog,
//!   expectations, response time, certificate days);
//! - [`heal`]: `on_down` into the heal ladder and its limits;
//! - [`firewall_section`]: `[firewall]` into [`FirewallSettings`];
//! - [`probe_modules`]: `[[probe_module]]`s, built as monitors without a target;
//! - [`values`]: the checkers every section shares (durations, counts, paths).

mod daemon;
mod defaults;
mod firewall_section;
mod heal;
mod monitor;
mod notifiers;
mod probe_keys;
mod probe_modules;
mod values;

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;

use super::error::SourceFile;
use super::parse::{self, MonitorEntry, Parsed, Section};
use super::{Config, DaemonSettings, FirewallSettings, Problems, RunningCheck};
use daemon::daemon_settings;
use defaults::{resolve_defaults, Defaults};
use firewall_section::firewall_settings;
use monitor::{build_monitor, MonitorContext};
use notifiers::check_notifiers;
use probe_modules::build_probe_modules;

/// Upper bound for `fail_after`, `recover_after`, `window`, `flap_max_transitions`: the
/// state machine keeps `window` results per monitor.
const MAX_COUNT: i64 = 1000;
/// Upper bound for `max_bytes`: a port check has no business reading more.
const MAX_BYTES: i64 = 16 * 1024 * 1024;

/// A problem inside one section, before it gets its file and context.
#[derive(Debug)]
struct Issue {
    span: Range<usize>,
    /// Key path inside the section: `target`, `tls.ca_file`, `dialog[2].expect`.
    path: String,
    message: String,
}

#[derive(Debug, Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn add(&mut self, span: Range<usize>, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            span,
            path: path.into(),
            message: message.into(),
        });
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands the issues to `problems`, leaving out those about keys that were dropped for
    /// an earlier error (they would only repeat it).
    fn report<T>(self, section: &Section<T>, files: &[SourceFile], problems: &mut Problems) {
        let file = &files[section.file];
        for issue in self.0 {
            if section.dropped.iter().any(|d| related(&issue.path, d)) {
                continue;
            }
            let message = if issue.path.is_empty() {
                format!("{}: {}", section.context, issue.message)
            } else {
                format!("{}: {}: {}", section.context, issue.path, issue.message)
            };
            problems.push(section.file, file, &issue.span, message);
        }
    }
}

/// Whether one path is the other or lies inside it.
fn related(a: &str, b: &str) -> bool {
    let inside = |long: &str, short: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    inside(a, b) || inside(b, a)
}

/// Builds the config from its sections; every problem goes to `problems`.
pub fn assemble(parsed: Parsed, problems: &mut Problems, running: &RunningCheck<'_>) -> Config {
    let Parsed {
        files,
        daemon,
        defaults,
        firewall,
        monitors,
        notifiers,
        probe_modules,
    } = parsed;

    let daemon_settings = match &daemon {
        Some(section) => {
            let mut issues = Issues::default();
            let settings = section
                .value
                .as_ref()
                .map(|d| daemon_settings(d, base_dir(&files[section.file]), &mut issues))
                .unwrap_or_default();
            issues.report(section, &files, problems);
            settings
        }
        None => DaemonSettings::default(),
    };

    let notifier_configs = check_notifiers(&notifiers, &files, problems);
    // Every named notifier counts as defined, even one with a mistake of its own: that
    // mistake is reported once, not again at every `notify` naming it.
    let known: BTreeSet<&str> = notifiers
        .iter()
        .filter_map(|s| s.value.as_ref()?.name.as_ref())
        .map(|n| n.get_ref().as_str())
        .filter(|n| !n.trim().is_empty())
        .collect();

    let resolved_defaults = match &defaults {
        Some(section) => {
            let mut issues = Issues::default();
            let d = section
                .value
                .as_ref()
                .map(|d| resolve_defaults(d, &known, &mut issues))
                .unwrap_or_default();
            issues.report(section, &files, problems);
            d
        }
        None => Defaults::default(),
    };

    let mut built = Vec::new();
    let mut unchanged = Vec::new();
    let mut seen: HashMap<String, (usize, Range<usize>)> = HashMap::new();
    // Deferred monitors are read here, one at a time, and dropped once built.
    for entry in monitors {
        let sections = match entry {
            MonitorEntry::Parsed(section) => vec![*section],
            MonitorEntry::Deferred {
                file,
                range,
                number,
            } => parse::deferred_monitor(&files, file, range, number, problems),
        };
        for section in &sections {
            let Some(m) = &section.value else { continue };
            let file = &files[section.file];
            if let Some(name) = &m.name {
                let key = name.get_ref().clone();
                match seen.get(&key) {
                    Some((first_file, first_span)) => problems.push(
                        section.file,
                        file,
                        &name.span(),
                        format!(
                            "{}: name: duplicate monitor name, first defined at {}",
                            section.context,
                            files[*first_file].place(first_span)
                        ),
                    ),
                    None => {
                        seen.insert(key, (section.file, name.span()));
                    }
                }
            }
            let mut issues = Issues::default();
            let monitor = build_monitor(
                m,
                &MonitorContext {
                    header: section.span.clone(),
                    base_dir: base_dir(file),
                    defaults: &resolved_defaults,
                    notifiers: &known,
                    clean: section.dropped.is_empty(),
                },
                &mut issues,
            );
            issues.report(section, &files, problems);
            match monitor {
                Some(m) if running(&m.name, m.definition) => unchanged.push(m.name),
                Some(m) => built.push(m),
                None => {}
            }
        }
    }

    let firewall_settings = match &firewall {
        Some(section) => {
            let mut issues = Issues::default();
            let settings = section
                .value
                .as_ref()
                .map(|f| {
                    firewall_settings(
                        f,
                        base_dir(&files[section.file]),
                        &known,
                        &resolved_defaults.notify,
                        &mut issues,
                    )
                })
                .unwrap_or_default();
            issues.report(section, &files, problems);
            settings
        }
        None => FirewallSettings {
            notify: resolved_defaults.notify.clone(),
            ..FirewallSettings::default()
        },
    };

    let probe_modules =
        build_probe_modules(probe_modules, &files, &resolved_defaults, &known, problems);

    Config {
        daemon: daemon_settings,
        monitors: built,
        unchanged,
        probe_modules,
        notifiers: notifier_configs,
        firewall: firewall_settings,
        files: files.iter().map(|f| f.path.clone()).collect(),
    }
}

/// Relative paths in a file are taken from the file's directory.
fn base_dir(file: &SourceFile) -> &Path {
    match file.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
