//! ufw: the frontend's own view (`ENABLED=` in `/etc/ufw/ufw.conf`, `ufw status verbose`)
//! checked against the kernel (the iptables tables ufw writes).
//!
//! Why both: `ufw status` says "active" as long as its `ufw-user-*` chains exist, and prints
//! its *configured* defaults, so after `iptables -P INPUT ACCEPT` it still says
//! "deny (incoming)". Inbound defaults and rules therefore come from the kernel, read through
//! [`crate::iptables`] with whichever variant `iptables -V` reports.
//!
//! Enabling is ufw's own business (`ufw --force enable` + `ufw reload`): ufw restores its
//! rules from `/etc/ufw/*.rules`, so the baseline's restore payload is `Restore::Frontend`.

use crate::exec::{Command, Runner};
use crate::iptables::{self, Variant};
use crate::model::{BackendKind, State};
use crate::Error;

/// ufw's configuration file, whose `ENABLED=yes|no` says whether ufw should be on.
pub const CONF: &str = "/etc/ufw/ufw.conf";

/// The chain `ufw status` itself looks for to decide "active".
const USER_INPUT_CHAIN: &str = "ufw-user-input";

/// What `ufw status verbose` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UfwStatus {
    pub active: bool,
    /// The configured incoming default (`deny`, `reject`, `allow`); only printed when active.
    pub incoming: Option<String>,
}

/// `ENABLED=yes|no` from ufw.conf (shell syntax, so quotes are allowed).
pub fn parse_conf(source: &str, text: &str) -> Result<bool, Error> {
    let value = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .rev()
        .find_map(|l| l.strip_prefix("ENABLED="))
        .ok_or_else(|| Error::malformed(source, "no ENABLED= line"))?;
    match value.trim().trim_matches(|c| c == '"' || c == '\'') {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => Err(Error::malformed(
            source,
            format!("ENABLED={other}: expected yes or no"),
        )),
    }
}

/// Parses `ufw status verbose`.
pub fn parse_status(text: &str) -> Result<UfwStatus, Error> {
    const SOURCE: &str = "ufw status verbose";
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let active = match first.strip_prefix("Status:").map(str::trim) {
        Some("active") => true,
        Some("inactive") => false,
        _ => {
            return Err(Error::malformed(
                SOURCE,
                format!("line 1: expected `Status: active|inactive`, got `{first}`"),
            ))
        }
    };
    let mut incoming = None;
    for line in lines {
        if let Some(defaults) = line.strip_prefix("Default:") {
            // `deny (incoming), allow (outgoing), disabled (routed)`
            incoming = defaults
                .split(',')
                .map(str::trim)
                .find_map(|d| d.strip_suffix("(incoming)"))
                .map(|d| d.trim().to_string());
            if incoming.is_none() {
                return Err(Error::malformed(
                    SOURCE,
                    format!("no incoming default in `{line}`"),
                ));
            }
        }
    }
    if active && incoming.is_none() {
        return Err(Error::malformed(
            SOURCE,
            "ufw is active but printed no `Default:` line",
        ));
    }
    Ok(UfwStatus { active, incoming })
}

/// The iptables variant from `iptables -V` (`iptables v1.8.9 (nf_tables)` / `(legacy)`).
pub fn parse_iptables_version(text: &str) -> Result<Variant, Error> {
    if text.contains("(nf_tables)") {
        Ok(Variant::Nft)
    } else if text.contains("(legacy)") {
        Ok(Variant::Legacy)
    } else {
        Err(Error::malformed(
            "iptables -V",
            format!("no `(nf_tables)` or `(legacy)` in `{}`", text.trim()),
        ))
    }
}

/// Reads the configuration file. A missing file is an error naming it.
fn read_conf() -> Result<bool, Error> {
    let text = std::fs::read_to_string(CONF).map_err(|e| Error::Failed {
        command: format!("read {CONF}"),
        message: e.to_string(),
    })?;
    parse_conf(CONF, &text)
}

/// ufw's view and the kernel's, combined. `enabled` needs all three: `ENABLED=yes`, `Status:
/// active`, and ufw's chain present in the kernel.
pub fn combine(conf_enabled: bool, status: &UfwStatus, kernel: &iptables::Reading) -> State {
    let chains = kernel.has_filter_chain(USER_INPUT_CHAIN);
    let mut state = kernel.state.clone();
    state.backend = BackendKind::Ufw;
    state.enabled = conf_enabled && status.active && chains;
    if !conf_enabled {
        state
            .notes
            .push(format!("ufw is disabled in {CONF} (ENABLED=no)"));
    } else if !status.active {
        state.notes.push(
            "ufw is enabled in its configuration but `ufw status` says inactive: its chains are \
             missing from the kernel (flushed?)"
                .to_string(),
        );
    }
    if status.active && !chains {
        state.notes.push(format!(
            "`ufw status` says active but the kernel has no {USER_INPUT_CHAIN} chain"
        ));
    }
    if status.active {
        let said = status.incoming.as_deref().unwrap_or("?");
        if said != "allow" {
            for open in state.inbound.iter().filter(|d| !d.denies) {
                state.notes.push(format!(
                    "ufw reports \"{said} (incoming)\" but the kernel's {} INPUT policy is {}",
                    open.scope,
                    open.policy.as_deref().unwrap_or("absent").to_uppercase()
                ));
            }
        }
    }
    state
}

/// Which iptables variant ufw drives here (it runs plain `iptables`).
async fn variant(runner: &Runner) -> Result<Variant, Error> {
    let out = runner.run_ok(&Command::new("iptables", &["-V"])).await?;
    parse_iptables_version(&out.stdout)
}

pub async fn inspect(runner: &Runner) -> Result<State, Error> {
    let conf_enabled = read_conf()?;
    let out = runner
        .run_ok(&Command::new("ufw", &["status", "verbose"]))
        .await?;
    let status = parse_status(&out.stdout)?;
    let kernel = iptables::read(runner, variant(runner).await?).await?;
    Ok(combine(conf_enabled, &status, &kernel))
}

/// `ufw --force enable`, then `ufw reload`, then checks that it took. The reload is needed
/// because `ufw --force enable` does nothing to the kernel while ufw's chains exist ("Firewall
/// already started"), so a changed policy or a deleted rule would stay as it is.
pub async fn enable(runner: &Runner) -> Result<(), Error> {
    let mut said = Vec::new();
    for args in [&["--force", "enable"][..], &["reload"][..]] {
        let cmd = Command::new("ufw", args);
        let out = runner.run(&cmd).await?;
        let text = format!("{} {}", out.stdout.trim(), out.stderr.trim());
        if !out.success() {
            return Err(Error::Failed {
                command: cmd.to_string(),
                message: text.trim().to_string(),
            });
        }
        said.push(text.trim().to_string());
    }
    let state = inspect(runner).await?;
    if state.enabled {
        Ok(())
    } else {
        Err(Error::Failed {
            command: "ufw --force enable; ufw reload".to_string(),
            message: format!(
                "ufw is still not enabled afterwards ({}); ufw said: {}",
                state.notes.join("; "),
                said.join(" / ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iptables::{parse_save, state_from, Payload};

    fn data(name: &str) -> String {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn kernel(v4: &str, v6: &str) -> iptables::Reading {
        let v4 = parse_save("v4", v4).unwrap();
        let v6 = parse_save("v6", v6).unwrap();
        iptables::Reading {
            state: state_from(Variant::Nft, &v4, &v6),
            v4,
            v6,
            payload: Payload { v4: None, v6: None },
        }
    }

    fn ufw_kernel() -> iptables::Reading {
        kernel(&data("ufw_iptables_v4.txt"), &data("ufw_iptables_v6.txt"))
    }

    #[test]
    fn reads_the_config_switch() {
        assert!(parse_conf(CONF, &data("ufw_conf_enabled.conf")).unwrap());
        assert!(!parse_conf(CONF, &data("ufw_conf_disabled.conf")).unwrap());
        assert!(parse_conf(CONF, "ENABLED=\"yes\"\n").unwrap());
        let err = parse_conf(CONF, "LOGLEVEL=low\n").unwrap_err();
        assert!(err.to_string().contains(CONF), "{err}");
        assert!(parse_conf(CONF, "ENABLED=maybe\n").is_err());
    }

    #[test]
    fn reads_status_active_and_inactive_and_refuses_anything_else() {
        let active = parse_status(&data("ufw_status_active.txt")).unwrap();
        assert_eq!(
            active,
            UfwStatus {
                active: true,
                incoming: Some("deny".into())
            }
        );
        let inactive = parse_status(&data("ufw_status_inactive.txt")).unwrap();
        assert!(!inactive.active);
        for bad in [
            "",
            "ERROR: You need to be root to run this script\n",
            "Status: active\n",
            "Status: active\nDefault: allow (outgoing)\n",
            "Status: maybe\n",
        ] {
            let err = parse_status(bad).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn reads_the_iptables_variant() {
        assert_eq!(
            parse_iptables_version("iptables v1.8.9 (nf_tables)\n").unwrap(),
            Variant::Nft
        );
        assert_eq!(
            parse_iptables_version("iptables v1.8.9 (legacy)\n").unwrap(),
            Variant::Legacy
        );
        assert!(parse_iptables_version("iptables v1.4.21\n").is_err());
    }

    #[test]
    fn active_ufw_with_its_chains_is_enabled_and_its_rules_count() {
        let status = parse_status(&data("ufw_status_active.txt")).unwrap();
        let state = combine(true, &status, &ufw_kernel());
        assert_eq!(state.backend, BackendKind::Ufw);
        assert!(state.enabled);
        assert!(state.inbound_default_deny());
        assert!(state.notes.is_empty(), "{:?}", state.notes);
        // `ufw allow 22/tcp` lands in ufw-user-input, reached from INPUT through ufw-before-input.
        let need: crate::RequiredRule = "tcp/22".parse().unwrap();
        assert!(state.rules.iter().any(|r| need.satisfied_by(r)));
    }

    #[test]
    fn a_kernel_policy_tamper_ufw_does_not_see_is_noted() {
        // ufw still prints "deny (incoming)" after `iptables -P INPUT ACCEPT`.
        let status = parse_status(&data("ufw_status_active_after_policy_tamper.txt")).unwrap();
        let v4 = data("ufw_iptables_v4.txt").replace(":INPUT DROP", ":INPUT ACCEPT");
        let state = combine(true, &status, &kernel(&v4, &data("ufw_iptables_v6.txt")));
        assert!(state.enabled);
        assert!(!state.inbound_default_deny());
        assert_eq!(
            state.notes,
            ["ufw reports \"deny (incoming)\" but the kernel's ipv4 INPUT policy is ACCEPT"]
        );
    }

    #[test]
    fn not_enabled_unless_config_status_and_kernel_all_agree() {
        let active = parse_status(&data("ufw_status_active.txt")).unwrap();
        let inactive = parse_status(&data("ufw_status_inactive.txt")).unwrap();
        assert!(!combine(false, &active, &ufw_kernel()).enabled);
        let flushed = combine(true, &inactive, &kernel("", ""));
        assert!(!flushed.enabled);
        assert!(flushed.notes[0].contains("missing from the kernel"));
        let chainless = combine(true, &active, &kernel("", ""));
        assert!(!chainless.enabled);
        assert!(chainless
            .notes
            .iter()
            .any(|n| n.contains("no ufw-user-input")));
    }
}
