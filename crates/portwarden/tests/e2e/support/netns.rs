//! A network namespace of the test's own (`ip netns add`), deleted with the processes started
//! in it on drop: where a daemon may guard a real firewall without touching the machine's.

use std::path::PathBuf;
use std::process::{Child, Command};

pub struct Netns {
    pub name: String,
    /// A scratch directory of this namespace's test.
    pub dir: PathBuf,
    children: Vec<Child>,
}

impl Netns {
    /// A fresh namespace with `lo` up; `None` (the test skips) when it cannot be made or nft
    /// is missing, except under `CI`, where that fails.
    pub fn new(tag: &str) -> Option<Self> {
        let name = format!("pw-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let made = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        let have_nft = Command::new("sh")
            .args(["-c", "command -v nft"])
            .status()
            .is_ok_and(|s| s.success());
        if !made || !have_nft {
            let why = if made {
                "nft is not installed (scripts/install-test-deps installs it)"
            } else {
                "cannot create a network namespace (needs root)"
            };
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
            if made {
                let _ = Command::new("ip").args(["netns", "del", &name]).status();
            }
            return None;
        }
        let dir = super::temp_dir(tag);
        let ns = Self {
            name,
            dir,
            children: Vec::new(),
        };
        ns.sh("ip link set lo up");
        Some(ns)
    }

    /// `program` to run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `script` with `sh -c` inside; its stdout. Panics when it fails.
    pub fn sh(&self, script: &str) -> String {
        let out = self.cmd("sh").args(["-c", script]).output().unwrap();
        assert!(
            out.status.success(),
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keeps `child` (started inside) to be killed, by its own handle, on drop.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// The process id of the `index`-th child adopted (for signals).
    pub fn child_pid(&self, index: usize) -> u32 {
        self.children[index].id()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
