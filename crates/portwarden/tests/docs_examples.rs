//! The README and `docs/*.md` as a newcomer meets them: every command `--help` shows is listed
//! in the README, `ports snapshot` writes where the docs say, and every ```sh block runs as
//! written.
//!
//! The rule for code blocks: a ```sh block runs (under `bash -e -o pipefail`, with the
//! `portwarden` under test first on `PATH`) and must exit 0; one that cannot run here says why in
//! a visible line `# not run by the docs test: REASON`. Synopses with placeholders are ```text,
//! transcripts (`$ command` and its output) ```console; neither runs.
//!
//! The blocks run in a network namespace and a mount namespace of their own: `127.0.0.1:9898`
//! is a daemon started there from `/etc/portwarden/portwarden.toml`, and `/etc` and `/var/lib`
//! are overlays whose writes land in the test's scratch directory, so `/etc/portwarden/…` in an
//! example is written as the docs say without touching the machine's.

mod common;

use std::process::{Command, Output};

fn portwarden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portwarden"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// --- ports snapshot -------------------------------------------------------------------------

#[test]
fn ports_snapshot_creates_a_missing_parent_directory() {
    let dir = common::temp_dir("snapshot-parent");
    // As `/etc/portwarden/ports.json` on a host where nothing made `/etc/portwarden` yet.
    let file = dir.join("etc/portwarden/ports.json");
    let out = portwarden()
        .args(["ports", "snapshot"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("to {}", file.display())),
        "{}",
        text(&out)
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(saved["listeners"].is_array(), "{saved}");
    assert!(
        !file.with_extension("tmp").exists(),
        "the temporary file stays"
    );

    // A parent that cannot be made is named in the error.
    std::fs::write(dir.join("plain-file"), "").unwrap();
    let blocked = dir.join("plain-file/sub/ports.json");
    let out = portwarden()
        .args(["ports", "snapshot"])
        .arg(&blocked)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot create the directory {}",
            dir.join("plain-file/sub").display()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
