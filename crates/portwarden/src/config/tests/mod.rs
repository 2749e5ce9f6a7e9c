//! The wording of every config problem is pinned here: users grep for it and scripts parse
//! `file:line:col:`.
//!
//! One file per part of the config, like `build/`: [`daemon`], [`defaults`], [`monitor`],
//! [`probe_keys`] (presets, dialogs, expectations, TLS), [`notifiers`], [`heal`],
//! [`firewall_section`], [`probe_modules`]; and across them [`reporting`] (where and how
//! problems are said), [`files`] (directories, relative paths, reloads) and [`examples`]
//! (every config the repo shows loads). The helpers below load a config from a string.

mod daemon;
mod defaults;
mod examples;
mod files;
mod firewall_section;
mod heal;
mod monitor;
mod notifiers;
mod probe_keys;
mod probe_modules;
mod reporting;

use std::time::Duration;

use portwarden_probe::{MatchMode, Matcher, StartTls, State, Step, Verify};

use super::*;

fn load_str(text: &str) -> Result<Config, ConfigErrors> {
    load_files(
        vec![SourceFile::new("portwarden.toml".into(), text.into())],
        &|_, _| false,
    )
}

fn ok(text: &str) -> Config {
    match load_str(text) {
        Ok(c) => c,
        Err(e) => panic!("config should load, got:\n{e}"),
    }
}

/// The problems as printed, one string each.
fn problems(text: &str) -> Vec<String> {
    match load_str(text) {
        Ok(_) => panic!("config should not load"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

fn monitor<'a>(c: &'a Config, name: &str) -> &'a Monitor {
    c.monitors
        .iter()
        .find(|m| m.name == name)
        .expect("monitor exists")
}

/// A directory under the system temp dir, emptied, for directory-merge tests.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portwarden-config-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
