//! `[[probe_module]]`s: a monitor's probe keys built exactly as a monitor's, with the target
//! left to each `/probe` request; the keys that only a monitor has are refused by name.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::defaults::Defaults;
use super::monitor::{build_monitor, MonitorContext};
use super::{base_dir, Issues};
use crate::config::duration::HumanDuration;
use crate::config::error::SourceFile;
use crate::config::parse::Section;
use crate::config::schema::MonitorSection;
use crate::config::{ProbeModule, Problems};

/// Keys of a monitor that mean nothing to a `/probe` module: the request names the target,
/// and a module is neither scheduled nor notified nor healed.
const NOT_FOR_PROBE_MODULES: &str = "the target comes from the /probe request, and a module \
     is not scheduled, notified or healed";

/// `[[probe_module]]`s: a monitor's probe keys (protocol, send/expect/dialog, TLS, limits,
/// family, source) built exactly as a monitor's, with the target left to each request.
pub(super) fn build_probe_modules(
    sections: Vec<Section<MonitorSection>>,
    files: &[SourceFile],
    defaults: &Defaults,
    notifiers: &BTreeSet<&str>,
    problems: &mut Problems,
) -> Vec<ProbeModule> {
    let mut built = Vec::new();
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    for mut section in sections {
        let file = &files[section.file];
        let header = section.span.clone();
        let Some(m) = section.value.as_mut() else {
            continue;
        };
        let mut issues = Issues::default();
        if let Some(name) = &m.name {
            match seen.get(name.get_ref()) {
                Some(first) => issues.add(
                    name.span(),
                    "name",
                    format!(
                        "duplicate probe_module name, first defined at {}",
                        file.place(first)
                    ),
                ),
                None => {
                    seen.insert(name.get_ref().clone(), name.span());
                }
            }
        }
        let span = |s: Option<Range<usize>>| s.unwrap_or_else(|| header.clone());
        let foreign: [(&str, Option<Range<usize>>); 15] = [
            ("target", m.target.as_ref().map(Spanned::span)),
            ("owner", m.owner.as_ref().map(Spanned::span)),
            ("interval", m.interval.as_ref().map(Spanned::span)),
            ("fail_after", m.fail_after.as_ref().map(Spanned::span)),
            ("recover_after", m.recover_after.as_ref().map(Spanned::span)),
            ("window", m.window.as_ref().map(Spanned::span)),
            (
                "flap_max_transitions",
                m.flap_max_transitions.as_ref().map(Spanned::span),
            ),
            ("flap_window", m.flap_window.as_ref().map(Spanned::span)),
            ("notify", m.notify.as_ref().map(Spanned::span)),
            ("on_down", m.on_down.as_ref().map(Spanned::span)),
            ("max_actions", m.max_actions.as_ref().map(Spanned::span)),
            ("action_window", m.action_window.as_ref().map(Spanned::span)),
            (
                "action_cooldown",
                m.action_cooldown.as_ref().map(Spanned::span),
            ),
            ("reset_after", m.reset_after.as_ref().map(Spanned::span)),
            (
                "tags",
                m.tags
                    .as_ref()
                    .map(|t| t.first().map_or(header.clone(), Spanned::span)),
            ),
        ];
        let mut clean = section.dropped.is_empty();
        for (key, at) in foreign {
            if let Some(at) = at {
                issues.add(
                    span(Some(at)),
                    key,
                    format!("not a probe_module key: {NOT_FOR_PROBE_MODULES}"),
                );
                clean = false;
            }
        }
        // Built as a monitor with a stand-in target that is never probed, and an interval
        // that no module timeout can exceed.
        m.target = Some(Spanned::new(
            header.clone(),
            "probe-module.invalid:1".into(),
        ));
        m.interval = Some(Spanned::new(
            header.clone(),
            HumanDuration(Duration::from_secs(365 * 86_400)),
        ));
        let monitor = build_monitor(
            m,
            &MonitorContext {
                header: header.clone(),
                base_dir: base_dir(file),
                defaults,
                notifiers,
                clean,
            },
            &mut issues,
        );
        issues.report(&section, files, problems);
        if let (Some(monitor), true) = (monitor, clean) {
            built.push(ProbeModule {
                name: monitor.name,
                spec: monitor.probe.spec().clone(),
            });
        }
    }
    built
}
