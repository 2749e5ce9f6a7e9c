//! Secrets named by the config (`password_env = "SMTP_PASSWORD"`, `secret_file = "/etc/…"`) and
//! read at each send, so rotating one needs no restart and a missing one is a clear send error.

use crate::SendError;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    /// Written inline (only for values that are not secrets, such as a webhook `url`).
    Inline(String),
    Env {
        key: &'static str,
        var: String,
    },
    File {
        key: &'static str,
        path: String,
    },
}

impl Secret {
    /// At most one of `inline` / `<key>_env` / `<key>_file`; `None` when none is set. `key` is the
    /// config key without suffix (`password`) and names it in errors.
    pub(crate) fn choose(
        key: &'static str,
        inline: Option<&String>,
        env: Option<&String>,
        file: Option<&String>,
    ) -> Result<Option<Secret>, String> {
        let set: Vec<Secret> = [
            inline.map(|v| Secret::Inline(v.clone())),
            env.map(|v| Secret::Env {
                key,
                var: v.clone(),
            }),
            file.map(|v| Secret::File {
                key,
                path: v.clone(),
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        match set.len() {
            0 => Ok(None),
            1 => Ok(set.into_iter().next()),
            _ => Err(format!(
                "set only one of {key}, {key}_env, {key}_file (they say the same thing)"
            )),
        }
    }

    /// Like [`Secret::choose`], but one of them must be set.
    pub(crate) fn require(
        key: &'static str,
        inline: Option<&String>,
        env: Option<&String>,
        file: Option<&String>,
    ) -> Result<Secret, String> {
        let names = if inline.is_some() || !matches!(key, "password" | "secret") {
            format!("{key}, {key}_env or {key}_file")
        } else {
            format!("{key}_env or {key}_file")
        };
        Secret::choose(key, inline, env, file)?.ok_or_else(|| format!("missing {names}"))
    }

    /// The value now. `notifier` is the notifier type, for the message. A missing variable is
    /// permanent (the daemon's environment does not change); an unreadable file may be fixed
    /// while the daemon retries.
    pub(crate) fn read(&self, notifier: &str) -> Result<String, SendError> {
        match self {
            Secret::Inline(v) => Ok(v.clone()),
            Secret::Env { key, var } => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => Err(SendError::permanent(format!(
                    "{notifier}: {key}_env: environment variable {var} is empty"
                ))),
                Err(std::env::VarError::NotPresent) => Err(SendError::permanent(format!(
                    "{notifier}: {key}_env: environment variable {var} is not set"
                ))),
                Err(std::env::VarError::NotUnicode(_)) => Err(SendError::permanent(format!(
                    "{notifier}: {key}_env: environment variable {var} is not UTF-8"
                ))),
            },
            Secret::File { key, path } => {
                match portwarden_bounded_read::read_bounded(
                    path.as_ref(),
                    portwarden_bounded_read::SECRET_LIMIT,
                ) {
                    Ok(v) => {
                        let v = v.trim_end_matches(['\r', '\n']).to_string();
                        if v.is_empty() {
                            Err(SendError::retryable(format!(
                                "{notifier}: {key}_file: {path} is empty"
                            )))
                        } else {
                            Ok(v)
                        }
                    }
                    Err(e) => Err(SendError::retryable(format!(
                        "{notifier}: {key}_file: cannot read {path}: {e}"
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_source_may_be_set() {
        let a = "a".to_string();
        assert!(Secret::choose("secret", None, Some(&a), Some(&a)).is_err());
        assert_eq!(Secret::choose("secret", None, None, None), Ok(None));
        assert_eq!(
            Secret::require("password", None, None, None).unwrap_err(),
            "missing password_env or password_file"
        );
    }

    #[test]
    fn missing_env_is_permanent_and_names_the_variable() {
        let s = Secret::Env {
            key: "password",
            var: "PORTWARDEN_NOTIFY_TEST_SURELY_UNSET".to_string(),
        };
        let e = s.read("smtp").unwrap_err();
        assert!(!e.retryable);
        assert_eq!(
            e.message,
            "smtp: password_env: environment variable PORTWARDEN_NOTIFY_TEST_SURELY_UNSET is not set"
        );
    }

    #[test]
    fn file_secret_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        std::fs::write(&path, "hunter2\n").expect("write");
        let s = Secret::File {
            key: "secret",
            path: path.display().to_string(),
        };
        assert_eq!(s.read("webhook"), Ok("hunter2".to_string()));
        std::fs::remove_file(&path).expect("rm");
        assert!(s.read("webhook").unwrap_err().retryable);
    }

    #[test]
    #[cfg(unix)]
    fn a_secret_file_that_is_a_device_is_refused_at_once() {
        // A symlink to /dev/zero used to be read until memory ran out.
        let s = Secret::File {
            key: "secret",
            path: "/dev/zero".into(),
        };
        let e = s.read("webhook").unwrap_err();
        assert!(e.message.contains("character device"), "{e:?}");
    }
}
