//! Windows Defender Firewall, read and switched on through PowerShell's NetSecurity cmdlets.
//!
//! Data enters as the JSON `Get-NetFirewallProfile … | ConvertTo-Json` prints and leaves as a
//! [`State`] with one inbound default per profile (`domain`, `private`, `public`). No COM and no
//! `windows` crate: the module is a parser plus two [`Command`]s, so it is built and tested on
//! every platform. netsh is not used because its text is localized.
//!
//! How the JSON looks (recorded-style samples in `tests/data/windows_*.json`):
//! * `Enabled` is a `NetSecurity.GpoBoolean` and `DefaultInboundAction` a `NetSecurity.Action`
//!   (MSFT_NetFirewallProfile, root/StandardCimv2). Windows PowerShell 5.1's `ConvertTo-Json`
//!   writes enums as their numbers, and so does PowerShell 7 unless `-EnumsAsStrings` is given
//!   (Microsoft's `ConvertToJsonCommand.EnumsAsStrings` reference). The numbers are
//!   GpoBoolean False=0, True=1, NotConfigured=2 and Action NotConfigured=0, Allow=2, Block=4,
//!   as several independent public tools that parse this output on real hosts agree (e.g.
//!   `"Enabled":1,"DefaultInboundAction":4,"DefaultOutboundAction":2` for an enabled, blocking
//!   profile). The string forms (`"True"`, `"Block"`, `"NotConfigured"`) are accepted too.
//! * Several profiles render as an array, a single one as a bare object; Windows PowerShell 5.1
//!   can also wrap an array as `{"value":[…],"Count":n}` when `System.Array`'s extended type
//!   data is loaded (the reason Chef's firewall resource runs `Remove-TypeData System.Array`).
//!
//! The read uses `-PolicyStore ActiveStore`: the policy the firewall enforces, with group
//! policy merged in. The default (persistent, local) store can say `NotConfigured` on a host
//! managed by group policy.

use serde_json::Value;

use crate::exec::{Command, Output, Runner};
use crate::model::{BackendKind, InboundDefault, State};
use crate::Error;

/// The PowerShell that ships with every supported Windows (5.1); found on PATH.
pub const POWERSHELL: &str = "powershell.exe";

/// The profiles Windows always has; one missing from the listing counts as switched off.
pub const PROFILES: [&str; 3] = ["domain", "private", "public"];

const READ_SCRIPT: &str = "Get-NetFirewallProfile -All -PolicyStore ActiveStore -ErrorAction Stop \
     | Select-Object Name,Enabled,DefaultInboundAction,DefaultOutboundAction \
     | ConvertTo-Json -Compress";

const ENABLE_SCRIPT: &str =
    "Set-NetFirewallProfile -Profile Domain,Private,Public -Enabled True -ErrorAction Stop";

const SOURCE: &str = "Get-NetFirewallProfile";

fn powershell(script: &str) -> Command {
    Command::new(
        POWERSHELL,
        &["-NoProfile", "-NonInteractive", "-Command", script],
    )
}

/// The read-only command that lists the three profiles as JSON.
pub fn read_command() -> Command {
    powershell(READ_SCRIPT)
}

/// The command that switches all three profiles on (it writes the local, persistent store).
pub fn enable_command() -> Command {
    powershell(ENABLE_SCRIPT)
}

/// Reads the firewall's profiles.
pub async fn inspect(runner: &Runner) -> Result<State, Error> {
    let cmd = read_command();
    let out = runner.run(&cmd).await?;
    interpret_read(&cmd, &out)
}

/// Switches every profile on, then reads again: an error when a profile is still off (a group
/// policy that forces it off wins over the local setting).
pub async fn enable(runner: &Runner) -> Result<(), Error> {
    let cmd = enable_command();
    runner.run_ok(&cmd).await?;
    let state = inspect(runner).await?;
    if state.enabled {
        Ok(())
    } else {
        Err(still_off(&cmd, &state))
    }
}

fn still_off(cmd: &Command, state: &State) -> Error {
    Error::Failed {
        command: cmd.to_string(),
        message: format!(
            "the firewall is still off afterwards ({}); a group policy may be forcing it off",
            state.notes.join("; ")
        ),
    }
}

/// Turns the read command's output into a state: a failed PowerShell (for instance the
/// firewall service MpsSvc stopped) is [`Error::Failed`] with its message, unreadable output
/// is [`Error::Malformed`].
pub fn interpret_read(cmd: &Command, out: &Output) -> Result<State, Error> {
    if !out.success() || (out.stdout.trim().is_empty() && !out.stderr.trim().is_empty()) {
        return Err(Error::Failed {
            command: cmd.to_string(),
            message: out.complaint(),
        });
    }
    parse_profiles(&out.stdout)
}

/// Parses `Get-NetFirewallProfile | Select-Object Name,Enabled,DefaultInboundAction,… |
/// ConvertTo-Json` output, numeric or string enums, array or single object.
///
/// `enabled` is true only when domain, private and public are all listed and all `True`.
/// A `NotConfigured` inbound action counts as denying: it means "the Windows default", and
/// that default is Block (INetFwPolicy2::DefaultInboundAction: "These settings are Block by
/// default"). A `NotConfigured` `Enabled` is not taken on trust and counts as off.
pub fn parse_profiles(text: &str) -> Result<State, Error> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(Error::malformed(SOURCE, "no output"));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::malformed(SOURCE, format!("not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("value") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(Error::malformed(SOURCE, "`value` is not a list")),
            None => vec![Value::Object(map)],
        },
        _ => {
            return Err(Error::malformed(
                SOURCE,
                "expected a profile object or a list",
            ))
        }
    };
    if items.is_empty() {
        return Err(Error::malformed(SOURCE, "no profiles listed"));
    }

    let mut enabled = true;
    let mut inbound = Vec::new();
    let mut notes = Vec::new();
    for item in &items {
        let profile = Profile::from_json(item)?;
        match profile.enabled {
            GpoBoolean::True => {}
            GpoBoolean::False => {
                enabled = false;
                notes.push(format!("the {} profile is off", profile.name));
            }
            GpoBoolean::NotConfigured => {
                enabled = false;
                notes.push(format!(
                    "the {} profile's Enabled is NotConfigured in the active store; counted as off",
                    profile.name
                ));
            }
        }
        if profile.inbound == Action::Allow {
            notes.push(format!(
                "the {} profile allows inbound traffic by default",
                profile.name
            ));
        }
        if inbound
            .iter()
            .any(|d: &InboundDefault| d.scope == profile.name)
        {
            return Err(Error::malformed(
                SOURCE,
                format!("profile {} listed twice", profile.name),
            ));
        }
        inbound.push(InboundDefault {
            scope: profile.name,
            policy: Some(profile.inbound.name().to_string()),
            denies: profile.inbound.denies(),
        });
    }
    for name in PROFILES {
        if !inbound.iter().any(|d| d.scope == name) {
            enabled = false;
            notes.push(format!(
                "the {name} profile is missing from the listing; counted as off"
            ));
        }
    }
    Ok(State {
        backend: BackendKind::Windows,
        enabled,
        inbound,
        rules: Vec::new(),
        foreign_tables: Vec::new(),
        notes,
    })
}

/// One profile as listed.
struct Profile {
    name: String,
    enabled: GpoBoolean,
    inbound: Action,
}

impl Profile {
    fn from_json(item: &Value) -> Result<Self, Error> {
        let Value::Object(map) = item else {
            return Err(Error::malformed(SOURCE, "a profile is not an object"));
        };
        let field = |key: &str| {
            map.get(key)
                .filter(|v| !v.is_null())
                .ok_or_else(|| Error::malformed(SOURCE, format!("a profile has no {key}")))
        };
        let name = profile_name(field("Name")?)?;
        let enabled = GpoBoolean::from_json(field("Enabled")?)
            .ok_or_else(|| bad_value(&name, "Enabled", map.get("Enabled")))?;
        let inbound = Action::from_json(field("DefaultInboundAction")?).ok_or_else(|| {
            bad_value(
                &name,
                "DefaultInboundAction",
                map.get("DefaultInboundAction"),
            )
        })?;
        Ok(Self {
            name,
            enabled,
            inbound,
        })
    }
}

fn bad_value(profile: &str, key: &str, value: Option<&Value>) -> Error {
    let shown = value.map(Value::to_string).unwrap_or_default();
    Error::malformed(
        SOURCE,
        format!("profile {profile}: unknown {key} value {shown}"),
    )
}

/// `Name` is a string; a number would be the NetSecurity.Profile flag (1, 2, 4).
fn profile_name(value: &Value) -> Result<String, Error> {
    let name = match value {
        Value::String(s) if !s.trim().is_empty() => s.trim().to_ascii_lowercase(),
        Value::Number(n) => match n.as_u64() {
            Some(1) => "domain".to_string(),
            Some(2) => "private".to_string(),
            Some(4) => "public".to_string(),
            _ => return Err(Error::malformed(SOURCE, format!("unknown profile {n}"))),
        },
        other => {
            return Err(Error::malformed(
                SOURCE,
                format!("unreadable profile name {other}"),
            ))
        }
    };
    Ok(name)
}

/// `Enabled`: NetSecurity.GpoBoolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GpoBoolean {
    False,
    True,
    NotConfigured,
}

impl GpoBoolean {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(if *b { Self::True } else { Self::False }),
            Value::Number(n) => match n.as_u64()? {
                0 => Some(Self::False),
                1 => Some(Self::True),
                2 => Some(Self::NotConfigured),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "false" => Some(Self::False),
                "true" => Some(Self::True),
                "notconfigured" => Some(Self::NotConfigured),
                _ => None,
            },
            _ => None,
        }
    }
}

/// `DefaultInboundAction`: NetSecurity.Action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    NotConfigured,
    Allow,
    Block,
}

impl Action {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => match n.as_u64()? {
                0 => Some(Self::NotConfigured),
                2 => Some(Self::Allow),
                4 => Some(Self::Block),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "notconfigured" => Some(Self::NotConfigured),
                "allow" => Some(Self::Allow),
                "block" => Some(Self::Block),
                _ => None,
            },
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::NotConfigured => "not-configured",
            Self::Allow => "allow",
            Self::Block => "block",
        }
    }

    /// NotConfigured falls back to the Windows default for inbound traffic, which is Block.
    fn denies(self) -> bool {
        matches!(self, Self::Block | Self::NotConfigured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! data {
        ($name:literal) => {
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $name))
        };
    }

    fn scopes(state: &State) -> Vec<(&str, Option<&str>, bool)> {
        state
            .inbound
            .iter()
            .map(|d| (d.scope.as_str(), d.policy.as_deref(), d.denies))
            .collect()
    }

    #[test]
    fn all_profiles_on_and_blocking_from_numeric_enums() {
        let state = parse_profiles(data!("windows_ps51_all_on.json")).unwrap();
        assert_eq!(state.backend, BackendKind::Windows);
        assert!(state.enabled);
        assert!(state.inbound_default_deny());
        assert_eq!(
            scopes(&state),
            vec![
                ("domain", Some("block"), true),
                ("private", Some("block"), true),
                ("public", Some("block"), true),
            ]
        );
        assert!(state.notes.is_empty(), "{:?}", state.notes);
    }

    #[test]
    fn a_profile_that_is_off_disables_the_whole_firewall_and_is_named() {
        let state = parse_profiles(data!("windows_ps51_public_off.json")).unwrap();
        assert!(!state.enabled);
        assert!(state.notes.iter().any(|n| n == "the public profile is off"));
        // Private allows inbound by default (Action 2).
        assert_eq!(scopes(&state)[1], ("private", Some("allow"), false));
        assert!(!state.inbound_default_deny());
        assert!(state
            .notes
            .iter()
            .any(|n| n.contains("private profile allows")));
    }

    #[test]
    fn not_configured_inbound_means_the_windows_default_block() {
        let state = parse_profiles(data!("windows_ps51_not_configured.json")).unwrap();
        assert!(state.enabled);
        assert!(state.inbound_default_deny());
        assert!(state
            .inbound
            .iter()
            .all(|d| d.policy.as_deref() == Some("not-configured") && d.denies));
    }

    #[test]
    fn string_enums_from_enums_as_strings_are_read_too() {
        let state = parse_profiles(data!("windows_ps7_enums_as_strings.json")).unwrap();
        assert!(!state.enabled);
        assert_eq!(
            scopes(&state),
            vec![
                ("domain", Some("block"), true),
                ("private", Some("not-configured"), true),
                ("public", Some("allow"), false),
            ]
        );
    }

    #[test]
    fn a_single_profile_renders_as_an_object_and_the_missing_ones_count_as_off() {
        let state = parse_profiles(data!("windows_ps51_single_profile.json")).unwrap();
        assert_eq!(scopes(&state), vec![("public", Some("block"), true)]);
        assert!(!state.enabled);
        assert!(state
            .notes
            .iter()
            .any(|n| n.contains("domain profile is missing")));
    }

    #[test]
    fn the_windows_powershell_value_count_wrapper_is_unwrapped() {
        let state = parse_profiles(data!("windows_ps51_array_wrapper.json")).unwrap();
        assert!(state.enabled);
        assert_eq!(state.inbound.len(), 3);
    }

    #[test]
    fn garbage_is_malformed_never_enabled() {
        for text in [
            data!("windows_truncated.json"),
            "",
            "\r\n",
            "null",
            "[]",
            "{}",
            "42",
            "Get-NetFirewallProfile : Access is denied.",
            r#"[{"Name":"Domain","Enabled":7,"DefaultInboundAction":4}]"#,
            r#"[{"Name":"Domain","Enabled":1,"DefaultInboundAction":3}]"#,
            r#"[{"Name":"Domain","Enabled":"Yes","DefaultInboundAction":4}]"#,
            r#"[{"Name":"Domain","Enabled":1}]"#,
            r#"[{"Enabled":1,"DefaultInboundAction":4}]"#,
            r#"[{"Name":"Domain","Enabled":null,"DefaultInboundAction":4}]"#,
            r#"[{"Name":"Domain","Enabled":1,"DefaultInboundAction":4},{"Name":"Domain","Enabled":1,"DefaultInboundAction":4}]"#,
        ] {
            match parse_profiles(text) {
                Err(Error::Malformed { .. }) => {}
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_byte_order_mark_is_tolerated() {
        let text = format!("\u{feff}{}", data!("windows_ps51_all_on.json"));
        assert!(parse_profiles(&text).unwrap().enabled);
    }

    #[test]
    fn a_powershell_error_is_failed_with_its_first_line() {
        let out = Output {
            code: Some(1),
            stdout: String::new(),
            stderr: data!("windows_mpssvc_stopped.stderr.txt").to_string(),
        };
        match interpret_read(&read_command(), &out) {
            Err(Error::Failed { command, message }) => {
                assert!(command.starts_with("powershell.exe -NoProfile"));
                assert_eq!(
                    message,
                    "Get-NetFirewallProfile : The service has not been started."
                );
            }
            other => panic!("{other:?}"),
        }
        // Same message with exit status 0 (a non-terminating error) and nothing on stdout.
        let out = Output {
            code: Some(0),
            ..out
        };
        assert!(matches!(
            interpret_read(&read_command(), &out),
            Err(Error::Failed { .. })
        ));
    }

    #[test]
    fn a_successful_read_goes_through_the_parser() {
        let out = Output {
            code: Some(0),
            stdout: data!("windows_ps51_all_on.json").to_string(),
            stderr: String::new(),
        };
        assert!(interpret_read(&read_command(), &out).unwrap().enabled);
        let empty = Output {
            stdout: String::new(),
            ..out
        };
        assert!(matches!(
            interpret_read(&read_command(), &empty),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn read_and_enable_plans_are_exact() {
        assert_eq!(
            read_command().args,
            vec![
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                "Get-NetFirewallProfile -All -PolicyStore ActiveStore -ErrorAction Stop \
                 | Select-Object Name,Enabled,DefaultInboundAction,DefaultOutboundAction \
                 | ConvertTo-Json -Compress",
            ]
        );
        let enable = enable_command();
        assert_eq!(enable.program, "powershell.exe");
        assert_eq!(
            enable.args,
            vec![
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                "Set-NetFirewallProfile -Profile Domain,Private,Public -Enabled True -ErrorAction Stop",
            ]
        );
        assert_eq!(enable.stdin, None);
    }

    #[test]
    fn still_off_after_enabling_names_the_profiles() {
        let state = parse_profiles(data!("windows_ps51_public_off.json")).unwrap();
        let err = still_off(&enable_command(), &state).to_string();
        assert!(err.contains("the public profile is off"), "{err}");
        assert!(err.contains("group policy"), "{err}");
    }
}
