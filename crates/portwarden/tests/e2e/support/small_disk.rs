//! A small disk of the test's own: a tmpfs mounted in a private mount namespace (`unshare -m`)
//! that a holder process keeps alive, so the test can fill it under a daemon (a full disk) and
//! empty it again without touching the machine's mounts. Processes that should see it run
//! inside with `nsenter`; the namespace and the mount go when the holder is killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct SmallDisk {
    /// Where the tmpfs is mounted (inside the namespace only).
    pub dir: PathBuf,
    holder: Child,
}

impl SmallDisk {
    /// A tmpfs of `size` (`"8m"`) on `dir`; `None` (the test skips) when it cannot be mounted
    /// (needs root), except under `CI`, where that fails.
    pub fn new(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        // Bounded: the holder ends by itself after 15 minutes even if the test is killed.
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=\"$1\" pw-small-disk \"$0\" && echo mounted && exec sleep 900")
            .arg(dir)
            .arg(size)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        let stdout = holder.stdout.take().unwrap();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let _ = holder.wait();
            let why = "cannot mount a tmpfs in a private mount namespace (needs root)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
            return None;
        }
        Some(Self {
            dir: dir.to_path_buf(),
            holder,
        })
    }

    /// `program` to run where the disk is mounted.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "--", program]);
        c
    }

    /// Fills the disk to the last byte.
    pub fn fill(&self) {
        // dd stops (and fails) at "No space left on device": that is the point.
        let _ = self
            .cmd("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", self.dir.join("filler").display()))
            .arg("bs=16k")
            .stderr(Stdio::null())
            .status()
            .unwrap();
    }

    /// Makes room again.
    pub fn free(&self) {
        let ok = self
            .cmd("rm")
            .arg(self.dir.join("filler"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot remove the filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
