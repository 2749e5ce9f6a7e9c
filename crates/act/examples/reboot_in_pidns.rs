//! Test helper for `tests/reboot_pidns.rs`: issues a reboot through `portwarden_act::run`. Never
//! run it on its own: it refuses unless the test safety net is set
//! (`PORTWARDEN_TEST_NO_HOST_REBOOT=1` and `PORTWARDEN_HOST_PIDNS`), and the `syscall` mode also
//! unless it is PID 1 (the init of a private PID namespace, `unshare -p -f --mount-proc`), where
//! `reboot(2)` only ends the namespace.
//!
//! ```text
//! reboot_in_pidns syscall STATE_DIR          # reboot(2); init killed, unshare exits 129
//! reboot_in_pidns command STATE_DIR MARKER   # `touch MARKER` as the reboot command
//! ```
//! Exit: 0 issued (command mode), 2 refused or failed, 3/4 refused by this helper itself.

use std::path::PathBuf;

use portwarden_act::{ActionSpec, Context, RebootAction, RebootMethod};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var("PORTWARDEN_TEST_NO_HOST_REBOOT").as_deref() != Ok("1")
        || std::env::var_os("PORTWARDEN_HOST_PIDNS").is_none()
    {
        eprintln!("refusing: set PORTWARDEN_TEST_NO_HOST_REBOOT=1 and PORTWARDEN_HOST_PIDNS");
        std::process::exit(4);
    }
    let (mode, state_dir) = match (args.first(), args.get(1)) {
        (Some(m), Some(d)) => (m.as_str(), PathBuf::from(d)),
        _ => {
            eprintln!("usage: reboot_in_pidns syscall|command STATE_DIR [MARKER]");
            std::process::exit(4);
        }
    };
    let spec = match (mode, args.get(2)) {
        ("syscall", _) => {
            if std::process::id() != 1 {
                eprintln!("refusing: syscall mode only as PID 1 of a private PID namespace");
                std::process::exit(3);
            }
            RebootAction {
                method: Some(RebootMethod::Syscall),
                max_per_day: Some(5),
                ..RebootAction::default()
            }
        }
        ("command", Some(marker)) => RebootAction {
            command: Some(vec!["/usr/bin/touch".into(), marker.clone()]),
            ..RebootAction::default()
        },
        _ => {
            eprintln!("usage: reboot_in_pidns syscall|command STATE_DIR [MARKER]");
            std::process::exit(4);
        }
    };
    let cx = Context {
        monitor: "pidns-test".into(),
        state_dir,
        ..Context::default()
    };
    let out = portwarden_act::run(&ActionSpec::Reboot(spec), &cx).await;
    println!("ok={} summary={}", out.ok, out.summary);
    std::process::exit(if out.ok { 0 } else { 2 });
}
