//! The maintenance pause: `portwarden firewall pause --for 30m` writes
//! `STATE_DIR/firewall-pause.json`, and the guard reads it before every repair (it keeps
//! alerting). `portwarden firewall resume` removes it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::unix_secs;

/// File name of the pause switch inside the state directory.
pub const PAUSE_FILE: &str = "firewall-pause.json";

/// The maintenance switch, written by `portwarden firewall pause` and read by the guard
/// before every repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Unix seconds.
    pub until: u64,
    #[serde(default)]
    pub reason: String,
}

impl Pause {
    /// The pause in force at `path`, if any (an expired or unreadable file is no pause; an
    /// unreadable one is logged).
    pub fn active(path: &Path) -> Option<Pause> {
        // Bounded: the state directory is ours, but a full disk or a stray symlink must not
        // stall the guard.
        let text =
            match crate::config::files::read_bounded(path, crate::config::files::SECRET_LIMIT) {
                Ok(t) => t,
                Err(crate::config::files::FileError::Io(e))
                    if e.kind() == std::io::ErrorKind::NotFound =>
                {
                    return None
                }
                Err(e) => {
                    tracing::warn!("cannot read the pause file {}: {e}", path.display());
                    return None;
                }
            };
        match serde_json::from_str::<Pause>(&text) {
            Ok(p) if p.until > unix_secs() => Some(p),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("ignoring the malformed pause file {}: {e}", path.display());
                None
            }
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string(self).unwrap_or_default())?;
        std::fs::rename(tmp, path)
    }
}
