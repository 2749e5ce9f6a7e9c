//! Standing in for monitoring-plugins by name: a link called `check_tcp`, `check_smtp`,
//! `check_ssh`, `check_pop`, … (or `portwarden check_smtp …`) behaves as that plugin.
//!
//! Upstream, most of these names are check_tcp itself with a service's defaults (port,
//! expect string, quit string, TLS): they become `portwarden check tcp` with those defaults
//! ([`TcpService`]). check_smtp and check_ssh are programs of their own with their own
//! options, dialog and output; [`smtp`] and [`ssh`] reproduce them (monitoring-plugins
//! 2.3.3), on blocking sockets with one deadline, as the plugins do. Names that are separate
//! plugins upstream but not reproduced here (check_http, check_mysql, …) are refused rather
//! than run with options that mean something else.
//!
//! Data flow: `cli::run` asks [`invocation`] whether argv names a plugin; [`Plugin::run`]
//! either hands back the argv of a `portwarden check` command or runs the plugin itself and
//! returns its exit code.

mod net;
mod smtp;
mod ssh;
mod tls;

use std::ffi::OsString;
use std::path::Path;

use portwarden_probe::State;

/// The options every reproduced plugin ends with.
#[derive(Debug, clap::Args)]
pub(super) struct Tail {
    #[arg(short = 'h', long)]
    help: bool,
    #[arg(short = 'V', long)]
    version: bool,
    /// The arguments that are not options (a host, a port). Like getopt with `+`, the first
    /// of them ends the options. They take hyphens so that they can: an unknown option
    /// lands at their head.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub positional: Vec<String>,
}

/// Parses plugin `name`'s options and answers what the plugin answers before any check: a
/// usage error, an unknown option, `-h` / `-V` (each UNKNOWN). `Err` holds the exit code.
fn parse_options<A: clap::Parser>(
    name: &str,
    args: Vec<OsString>,
    tail: fn(&A) -> &Tail,
) -> Result<A, i32> {
    let unknown = State::Unknown.exit_code();
    let argv = std::iter::once(OsString::from(name)).chain(args);
    let options = A::try_parse_from(argv).map_err(|e| {
        let _ = e.print();
        unknown
    })?;
    let t = tail(&options);
    if let Some(option) = t
        .positional
        .first()
        .filter(|p| p.len() > 1 && p.starts_with('-'))
    {
        println!("{name}: invalid option -- '{}'", &option[1..]);
        return Err(unknown);
    }
    if t.help || t.version {
        println!(
            "{name} (portwarden {}): monitoring-plugins' {name} 2.3.3, reproduced",
            env!("CARGO_PKG_VERSION")
        );
        return Err(unknown);
    }
    Ok(options)
}

/// A check_tcp service: what `check_<name>` (a link to check_tcp upstream) sets by default.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TcpService {
    /// The link's name without `check_`, lower case.
    pub name: &'static str,
    pub port: u16,
    /// Sent after connecting.
    pub send: Option<&'static str>,
    /// Expected anywhere in the response (any of them).
    pub expect: &'static [&'static str],
    /// Whether the user's `-e` adds to [`Self::expect`] instead of replacing it (check_tcp
    /// keeps its two NNTP strings and appends).
    pub expect_appends: bool,
    /// Sent (as is) after the verdict.
    pub quit: Option<&'static str>,
    /// TLS from the first byte.
    pub ssl: bool,
    /// The response is never shown (check_tcp's `-j`).
    pub hide_output: bool,
}

const fn service(name: &'static str, port: u16, expect: &'static [&'static str]) -> TcpService {
    TcpService {
        name,
        port,
        send: None,
        expect,
        expect_appends: false,
        quit: Some("QUIT\r\n"),
        ssl: false,
        hide_output: false,
    }
}

/// The links Debian's monitoring-plugins-basic 2.3.3 installs to check_tcp, with check_tcp's
/// defaults for each (check_tcp.c, `SERVICE`). check_udp is left out: portwarden has no UDP.
pub(super) const TCP_SERVICES: &[TcpService] = &[
    service("ftp", 21, &["220"]),
    service("pop", 110, &["+OK"]),
    TcpService {
        quit: Some("a1 LOGOUT\r\n"),
        ..service("imap", 143, &["* OK"])
    },
    TcpService {
        quit: Some("a1 LOGOUT\r\n"),
        ssl: true,
        ..service("simap", 993, &["* OK"])
    },
    TcpService {
        ssl: true,
        ..service("spop", 995, &["+OK"])
    },
    TcpService {
        ssl: true,
        ..service("ssmtp", 465, &["220"])
    },
    TcpService {
        send: Some(
            "<stream:stream to='host' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams'>\n",
        ),
        quit: Some("</stream:stream>\n"),
        hide_output: true,
        ..service("jabber", 5222, &["<?xml version='1.0'"])
    },
    TcpService {
        expect_appends: true,
        ..service("nntp", 119, &["200", "201"])
    },
    TcpService {
        expect_appends: true,
        ssl: true,
        ..service("nntps", 563, &["200", "201"])
    },
    TcpService {
        send: Some("PING"),
        quit: None,
        ..service("clamd", 3310, &["PONG"])
    },
];

/// Separate programs upstream whose options portwarden does not reproduce: run under their
/// name, the binary refuses instead of reading their options as check_tcp's.
const NOT_REPRODUCED: &[&str] = &["http", "mysql", "pgsql", "ldap", "ldaps", "udp"];

/// What running a plugin comes to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Dispatch {
    /// The plugin ran (or was refused): exit with this code.
    Exit(i32),
    /// Run this `portwarden check …` command line instead.
    Check(Vec<OsString>),
}

/// What a plugin name stands for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plugin {
    /// `check_tcp`, or a link to check_tcp upstream: `portwarden check tcp` (with the
    /// service's defaults).
    Tcp(Option<&'static TcpService>),
    /// `check_smtp`, monitoring-plugins' own SMTP plugin.
    Smtp,
    /// `check_ssh`, monitoring-plugins' own SSH plugin.
    Ssh,
    /// A name with no plugin upstream that is one of our presets (`check_imaps`):
    /// `portwarden check <preset>` with check_tcp's options.
    Preset(String),
    /// A separate plugin upstream that portwarden does not reproduce.
    NotReproduced(String),
}

impl Plugin {
    /// The plugin `name` (without `check_`) stands for, if any.
    pub(super) fn from_name(name: &str) -> Option<Plugin> {
        let name = name.to_ascii_lowercase();
        if let Some(s) = TCP_SERVICES.iter().find(|s| s.name == name) {
            return Some(Plugin::Tcp(Some(s)));
        }
        match name.as_str() {
            "tcp" => Some(Plugin::Tcp(None)),
            "smtp" => Some(Plugin::Smtp),
            "ssh" => Some(Plugin::Ssh),
            n if NOT_REPRODUCED.contains(&n) => Some(Plugin::NotReproduced(name)),
            n if portwarden_probe::presets::find(n).is_some() => Some(Plugin::Preset(name)),
            _ => None,
        }
    }

    /// Reads the plugin's options as [`Plugin::run`] does, without running a check: the
    /// `portwarden check` command line it stands for, if any. For the fuzz targets.
    pub(super) fn parse_only(self, args: Vec<OsString>) -> Option<Vec<OsString>> {
        match self {
            Plugin::Smtp => smtp::parse_only(args),
            Plugin::Ssh => ssh::parse_only(args),
            other => match other.run(args) {
                Dispatch::Check(argv) => return Some(argv),
                Dispatch::Exit(_) => {}
            },
        }
        None
    }

    /// Runs the plugin on `args` (its options, without the program name), or names the
    /// `portwarden check` command line that does the work.
    pub(super) fn run(self, args: Vec<OsString>) -> Dispatch {
        let check = |service: &str, extra: &[&str]| {
            let mut argv: Vec<OsString> = vec!["portwarden".into(), "check".into()];
            argv.push(service.into());
            argv.extend(extra.iter().map(OsString::from));
            argv.extend(args.iter().cloned());
            argv
        };
        match self {
            Plugin::Tcp(None) => Dispatch::Check(check("tcp", &[])),
            Plugin::Tcp(Some(s)) => Dispatch::Check(check("tcp", &["--plugin-service", s.name])),
            Plugin::Preset(name) => Dispatch::Check(check(&name, &[])),
            Plugin::Smtp => Dispatch::Exit(smtp::run(args)),
            Plugin::Ssh => Dispatch::Exit(ssh::run(args)),
            Plugin::NotReproduced(name) => {
                println!(
                    "{} UNKNOWN - check_{name} is a plugin of its own in monitoring-plugins; \
                     portwarden does not reproduce its options (try `portwarden check --help`)",
                    name.to_ascii_uppercase()
                );
                Dispatch::Exit(State::Unknown.exit_code())
            }
        }
    }
}

/// Whether `args` invokes a plugin: the program is called `check_NAME` (a link), or the
/// first argument is `check_NAME` (`portwarden check_smtp -H …`). Returns the plugin and
/// its own arguments.
pub(super) fn invocation(args: &[OsString]) -> Option<(Plugin, Vec<OsString>)> {
    let plugin_name = |arg: &OsString| {
        Path::new(arg)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("check_"))
            .and_then(Plugin::from_name)
    };
    if let Some(plugin) = args.first().and_then(plugin_name) {
        return Some((plugin, args[1..].to_vec()));
    }
    // Only a bare `check_NAME`: a path in the first argument is a file, not a plugin.
    let first = args.get(1)?;
    if first.to_str().is_some_and(|s| s.contains('/')) {
        return None;
    }
    let plugin = plugin_name(first)?;
    Some((plugin, args[2..].to_vec()))
}

/// `fperfdata` of monitoring-plugins: `label=VALUEs;[WARN];[CRIT];[MIN][;MAX]`, six decimals.
pub(super) fn fperfdata(
    value: f64,
    warning: Option<f64>,
    critical: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
) -> String {
    let num = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    let mut out = format!(
        "time={value:.6}s;{};{};{}",
        num(warning),
        num(critical),
        num(min)
    );
    if let Some(max) = max {
        out.push_str(&format!(";{max:.6}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn names_map_to_plugins() {
        assert_eq!(Plugin::from_name("tcp"), Some(Plugin::Tcp(None)));
        assert_eq!(Plugin::from_name("smtp"), Some(Plugin::Smtp));
        assert_eq!(Plugin::from_name("SSH"), Some(Plugin::Ssh));
        assert!(matches!(Plugin::from_name("pop"), Some(Plugin::Tcp(Some(s))) if s.port == 110));
        assert!(matches!(Plugin::from_name("ssmtp"), Some(Plugin::Tcp(Some(s))) if s.ssl));
        assert_eq!(
            Plugin::from_name("imaps"),
            Some(Plugin::Preset("imaps".into()))
        );
        assert_eq!(
            Plugin::from_name("http"),
            Some(Plugin::NotReproduced("http".into()))
        );
        assert_eq!(Plugin::from_name("gopher"), None);
    }

    #[test]
    fn service_names_are_unique_and_not_presets_shadowed_by_accident() {
        let mut seen = std::collections::HashSet::new();
        for s in TCP_SERVICES {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(!s.expect.is_empty(), "{} expects nothing", s.name);
        }
    }

    #[test]
    fn links_and_first_arguments_invoke_plugins() {
        let (p, rest) =
            invocation(&os(&["/usr/lib/nagios/plugins/check_smtp", "-H", "x"])).expect("a plugin");
        assert_eq!((p, rest), (Plugin::Smtp, os(&["-H", "x"])));
        let (p, rest) = invocation(&os(&["portwarden", "check_ssh", "-H", "x"])).expect("plugin");
        assert_eq!((p, rest), (Plugin::Ssh, os(&["-H", "x"])));
        assert!(invocation(&os(&["portwarden", "check", "tcp"])).is_none());
        assert!(invocation(&os(&["portwarden", "./check_tcp"])).is_none());
        assert!(invocation(&os(&["check_unknownthing", "-H", "x"])).is_none());
    }

    #[test]
    fn services_run_as_check_tcp_with_their_defaults() {
        let pop = Plugin::from_name("pop").expect("a plugin");
        assert_eq!(
            pop.run(os(&["-H", "x"])),
            Dispatch::Check(os(&[
                "portwarden",
                "check",
                "tcp",
                "--plugin-service",
                "pop",
                "-H",
                "x"
            ]))
        );
        let imaps = Plugin::from_name("imaps").expect("a plugin");
        assert_eq!(
            imaps.run(os(&["-H", "x"])),
            Dispatch::Check(os(&["portwarden", "check", "imaps", "-H", "x"]))
        );
    }

    #[test]
    fn perfdata_is_fperfdata() {
        assert_eq!(
            fperfdata(0.016488, None, None, Some(0.0), None),
            "time=0.016488s;;;0.000000"
        );
        assert_eq!(
            fperfdata(0.5, Some(1.0), Some(2.0), Some(0.0), Some(10.0)),
            "time=0.500000s;1.000000;2.000000;0.000000;10.000000"
        );
    }
}
