//! `type = "exec"`: runs a program of yours for each notification. No shell: `command` is the
//! argv. The program gets the [`Notification`] as JSON on stdin (the webhook's body) and these
//! environment variables besides the daemon's own:
//!
//! | variable | value |
//! |---|---|
//! | `PORTWARDEN_KIND` | the notification's kind (`down`, `up`, `grouped`, …) |
//! | `PORTWARDEN_HOST` | the host |
//! | `PORTWARDEN_SUBJECT` | the monitor (comma-separated for a group) |
//! | `PORTWARDEN_STATUS` | its status (comma-separated for a group) |
//! | `PORTWARDEN_MESSAGE` | the item's message; for a group the count line |
//! | `PORTWARDEN_SUMMARY` | the default subject line |
//! | `PORTWARDEN_TARGET`, `PORTWARDEN_REASON`, `PORTWARDEN_INCIDENT` | of the first item, empty if unknown |
//! | `PORTWARDEN_ITEMS` | the number of items |
//! | `PORTWARDEN_NOTIFICATION_ID` | the notification's id (stable across retries) |
//!
//! Exit 0 is delivered; the response is the first line of stdout, or `exit 0`. Any other exit
//! is an error carrying the first line of stderr (else of stdout); it is retryable, except the
//! sysexits codes that say trying again cannot help (64–68, 70, 76–78). The program runs in its
//! own process group; on `timeout` the whole group is killed and the send fails (retryable).
//! stdout and stderr are captured, at most 64 KiB each.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `command` | argv, `["/usr/local/bin/page-oncall", "--team", "ops"]` | required |
//! | `env` | extra environment variables, `{ TEAM = "ops" }` | none |
//! | `timeout` | the program is killed after this long | `"10s"` |

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::template::render_subject;
use crate::{one_line, Delivery, Notification, SendError};

/// Captured output is cut at this many bytes per stream.
const OUTPUT_CAP: usize = 64 * 1024;

/// `type = "exec"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The program is killed after this long (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A built `exec` notifier.
#[derive(Debug)]
pub struct ExecNotifier {
    command: Vec<String>,
    env: BTreeMap<String, String>,
}

impl ExecNotifier {
    pub(crate) fn new(spec: &ExecSpec) -> Result<ExecNotifier, String> {
        match spec.command.first() {
            None => return Err("command: must name a program".to_string()),
            Some(p) if p.trim().is_empty() => {
                return Err("command: the program name is empty".to_string())
            }
            Some(_) => {}
        }
        if spec.command.iter().any(|a| a.contains('\0')) {
            return Err("command: arguments cannot hold NUL bytes".to_string());
        }
        for (k, v) in &spec.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(format!("env: {k:?} is not a usable environment variable"));
            }
        }
        Ok(ExecNotifier {
            command: spec.command.clone(),
            env: spec.env.clone(),
        })
    }

    /// The `PORTWARDEN_*` variables for `n`.
    pub fn environment(n: &Notification) -> Vec<(&'static str, String)> {
        let join = |f: &dyn Fn(&crate::Item) -> String| {
            n.items.iter().map(f).collect::<Vec<_>>().join(",")
        };
        let first = n.items.first();
        let message = match n.items.as_slice() {
            [one] => one.message.clone(),
            _ => render_subject(n),
        };
        let vars = vec![
            ("PORTWARDEN_KIND", n.kind.as_str().to_string()),
            ("PORTWARDEN_HOST", n.host.clone()),
            ("PORTWARDEN_SUBJECT", join(&|i| i.subject.clone())),
            ("PORTWARDEN_STATUS", join(&|i| i.status.clone())),
            ("PORTWARDEN_MESSAGE", message),
            ("PORTWARDEN_SUMMARY", render_subject(n)),
            (
                "PORTWARDEN_TARGET",
                first.and_then(|i| i.target.clone()).unwrap_or_default(),
            ),
            (
                "PORTWARDEN_REASON",
                first.and_then(|i| i.reason.clone()).unwrap_or_default(),
            ),
            (
                "PORTWARDEN_INCIDENT",
                first.map(|i| i.incident.clone()).unwrap_or_default(),
            ),
            ("PORTWARDEN_ITEMS", n.items.len().to_string()),
            ("PORTWARDEN_NOTIFICATION_ID", n.id.clone()),
        ];
        vars.into_iter()
            .map(|(k, v)| (k, v.replace('\0', " ")))
            .collect()
    }

    pub(crate) async fn send(
        &self,
        n: &Notification,
        timeout: Duration,
    ) -> Result<Delivery, SendError> {
        let program = &self.command[0];
        let input = serde_json::to_vec(n).map_err(|e| {
            SendError::permanent(format!("exec: cannot encode the notification: {e}"))
        })?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        for (k, v) in Self::environment(n) {
            cmd.env(k, v);
        }
        cmd.envs(&self.env);
        let mut child = cmd.spawn().map_err(|e| {
            let permanent = matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            );
            SendError {
                message: format!("exec: cannot start {program}: {e}"),
                retryable: !permanent,
            }
        })?;
        let mut group = GroupGuard::new(child.id());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let work = async {
            let write = async {
                if let Some(mut s) = stdin {
                    // A program that does not read its input may close it early: fine.
                    let _ = s.write_all(&input).await;
                    let _ = s.shutdown().await;
                }
            };
            let (_, out, err) = tokio::join!(write, read_capped(stdout), read_capped(stderr));
            let status = child.wait().await;
            (status, out, err)
        };
        let (status, out, err) = match tokio::time::timeout(timeout, work).await {
            Ok(done) => {
                group.disarm();
                done
            }
            Err(_) => {
                group.kill();
                return Err(SendError::retryable(format!(
                    "exec: {program} did not finish within {}; killed",
                    humantime::format_duration(timeout)
                )));
            }
        };
        let status = status
            .map_err(|e| SendError::retryable(format!("exec: waiting for {program}: {e}")))?;
        if status.success() {
            let line = first_line(&out);
            return Ok(Delivery {
                response: if line.is_empty() {
                    "exit 0".to_string()
                } else {
                    line
                },
            });
        }
        let said = {
            let e = first_line(&err);
            if e.is_empty() {
                first_line(&out)
            } else {
                e
            }
        };
        let (how, retryable) = match status.code() {
            Some(code) => (
                format!("exited with {code}"),
                !matches!(code, 64..=68 | 70 | 76..=78),
            ),
            None => ("was killed by a signal".to_string(), true),
        };
        let mut message = format!("exec: {program} {how}");
        if !said.is_empty() {
            message.push_str(": ");
            message.push_str(&said);
        }
        Err(SendError { message, retryable })
    }
}

/// Reads a stream to its end, keeping the first [`OUTPUT_CAP`] bytes.
async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut stream) = stream else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    kept
}

/// The first non-empty line, for people.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| one_line(l, 200))
        .unwrap_or_default()
}

/// Kills the program's process group unless disarmed: on timeout, and when the send is
/// dropped half-way (the daemon shutting down), so no helper it started lingers.
struct GroupGuard {
    pid: Option<u32>,
}

impl GroupGuard {
    fn new(pid: Option<u32>) -> GroupGuard {
        GroupGuard { pid }
    }

    fn disarm(&mut self) {
        self.pid = None;
    }

    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.pid.take() {
            if let Some(pid) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
        self.pid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_command_is_refused() {
        let e = ExecNotifier::new(&ExecSpec::default()).unwrap_err();
        assert_eq!(e, "command: must name a program");
    }

    #[test]
    fn first_line_skips_blank_lines_and_survives_bad_utf8() {
        assert_eq!(first_line(b"\n\n  hello \nworld"), "hello");
        assert_eq!(first_line(b"\xff\xfe oops"), "\u{fffd}\u{fffd} oops");
        assert_eq!(first_line(b""), "");
    }
}
