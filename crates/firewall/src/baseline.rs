//! The known-good snapshot: what drift is measured against and what a restore puts back.
//! Saved as JSON by `portwarden firewall baseline save`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{BackendKind, InboundDefault, Rule};
use crate::{iptables, nftables, Error};

/// The file format's version; a newer file is refused rather than half understood.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub format: u32,
    pub backend: BackendKind,
    /// Seconds since the Unix epoch.
    pub saved_at: u64,
    /// The host it was taken on, so a baseline copied to the wrong machine is noticed.
    pub host: String,
    pub inbound: Vec<InboundDefault>,
    /// Normalised rules, for drift.
    pub rules: Vec<Rule>,
    /// What a restore applies.
    pub restore: Restore,
}

/// The backend-specific payload a restore applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Restore {
    /// Whole managed nftables tables, re-created atomically with `nft -f`.
    Nftables(nftables::Payload),
    /// `iptables-save` / `ip6tables-save` text, applied with the matching `-restore`.
    Iptables(iptables::Payload),
    /// ufw and firewalld keep their own configuration: restoring means reloading it.
    Frontend,
    /// Windows profiles or macOS: restoring means switching the firewall back on.
    Enable,
}

impl Baseline {
    /// The nftables tables this baseline covers (`inet filter`); `None` for other backends.
    /// Tables created after the baseline (Docker, fail2ban) are then none of the guard's business.
    pub fn nft_tables(&self) -> Option<Vec<String>> {
        match &self.restore {
            Restore::Nftables(payload) => Some(payload.table_ids()),
            _ => None,
        }
    }

    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text =
            portwarden_bounded_read::read_bounded(path, portwarden_bounded_read::CONFIG_LIMIT)
                .map_err(|e| Error::Baseline {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
        Self::parse(&text).map_err(|message| Error::Baseline {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses a baseline file's text; the error names the line and column.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let version: Version = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if version.format != FORMAT {
            return Err(format!(
                "baseline format {} is not supported (this portwarden reads format {FORMAT})",
                version.format
            ));
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// Writes the baseline atomically (temporary file, then rename), readable by root only.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let fail = |e: std::io::Error| Error::Baseline {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Baseline {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text + "\n").map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        }
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_that_is_a_device_is_refused_at_once() {
        // A baseline path symlinked to /dev/zero used to be read until memory ran out.
        let e = Baseline::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }
}
