//! The one way this crate runs programs: explicit argv, no shell, its own process group (unix),
//! a deadline after which the whole group is killed, stdout and stderr captured and capped.
//! `exec`, the `systemctl`/`service`/PowerShell fallbacks and the reboot command all go
//! through [`run_command`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of output kept per attempt (stdout and stderr together).
pub const OUTPUT_CAP: usize = 16 * 1024;

/// How long the pipes may stay open after the program exited (a background child it left
/// behind keeps them open; its later output is not captured).
const DRAIN_GRACE: Duration = Duration::from_millis(300);

/// A program to run.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandPlan {
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl CommandPlan {
    pub fn argv<I, S>(argv: I) -> CommandPlan
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CommandPlan {
            argv: argv.into_iter().map(Into::into).collect(),
            ..CommandPlan::default()
        }
    }
}

/// How the program ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// It exited (or was killed by a signal) on its own.
    Exited(ExitStatus),
    /// The deadline passed; its process group was killed.
    TimedOut,
    /// It could not be started.
    NotStarted(std::io::Error),
}

#[derive(Debug)]
pub(crate) struct Finished {
    pub ending: Ending,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// stdout then stderr, capped at [`OUTPUT_CAP`].
    pub fn output(&self) -> String {
        let mut s = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&self.stderr);
        }
        cap(s, OUTPUT_CAP)
    }

    /// The last non-empty line of stderr, else of stdout.
    pub fn hint(&self) -> Option<&str> {
        last_line(&self.stderr).or_else(|| last_line(&self.stdout))
    }

    /// `exit 1`, `killed by signal 9`, `timed out after 2s`, `cannot start: …`.
    pub fn describe(&self, timeout: Duration) -> String {
        match &self.ending {
            Ending::Exited(st) => describe_status(st),
            Ending::TimedOut => format!(
                "timed out after {}, process group killed",
                humantime::format_duration(timeout)
            ),
            Ending::NotStarted(e) => format!("cannot start: {e}"),
        }
    }

    pub fn success(&self) -> bool {
        matches!(&self.ending, Ending::Exited(st) if st.success())
    }

    pub fn not_found(&self) -> bool {
        matches!(&self.ending, Ending::NotStarted(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

fn describe_status(st: &ExitStatus) -> String {
    if let Some(code) = st.code() {
        return format!("exit {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = st.signal() {
            return format!("killed by signal {sig}");
        }
    }
    st.to_string()
}

fn last_line(s: &str) -> Option<&str> {
    s.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn cap(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let marker = "\n[… output cut]";
    let mut end = max.saturating_sub(marker.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(marker);
    s
}

/// Runs `plan`, bounded by `timeout`.
pub(crate) async fn run_command(plan: &CommandPlan, timeout: Duration) -> Finished {
    let Some((program, args)) = plan.argv.split_first() else {
        return Finished {
            ending: Ending::NotStarted(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty command",
            )),
            stdout: String::new(),
            stderr: String::new(),
        };
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = &plan.cwd {
        cmd.current_dir(cwd);
    }
    cmd.envs(&plan.env);
    #[cfg(unix)]
    {
        cmd.process_group(0);
        if let Some(gid) = plan.gid {
            cmd.gid(gid);
        }
        if let Some(uid) = plan.uid {
            cmd.uid(uid);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Finished {
                ending: Ending::NotStarted(e),
                stdout: String::new(),
                stderr: String::new(),
            }
        }
    };
    #[cfg(not(unix))]
    let _ = (plan.uid, plan.gid);
    // Armed until the program has exited: if this future is dropped (the caller's own
    // deadline), the group is killed rather than left running.
    let mut group = GroupGuard { pid: child.id() };
    let out = tokio::spawn(read_capped(child.stdout.take()));
    let err = tokio::spawn(read_capped(child.stderr.take()));
    let ending = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => Ending::Exited(st),
        Ok(Err(e)) => Ending::NotStarted(e),
        Err(_) => {
            group.kill();
            group.disarm();
            let _ = child.kill().await;
            Ending::TimedOut
        }
    };
    if matches!(ending, Ending::Exited(_)) {
        group.disarm();
    }
    let stdout = collect(out).await;
    let stderr = collect(err).await;
    Finished {
        ending,
        stdout,
        stderr,
    }
}

async fn collect(task: tokio::task::JoinHandle<Vec<u8>>) -> String {
    let mut task = task;
    let bytes = match tokio::time::timeout(DRAIN_GRACE, &mut task).await {
        Ok(Ok(b)) => b,
        _ => {
            task.abort();
            Vec::new()
        }
    };
    cap(String::from_utf8_lossy(&bytes).into_owned(), OUTPUT_CAP)
}

/// Reads to EOF, keeping the first [`OUTPUT_CAP`] bytes and discarding the rest so the
/// program never blocks on a full pipe.
async fn read_capped<R: AsyncRead + Unpin>(r: Option<R>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut r) = r else { return kept };
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = (OUTPUT_CAP + 4).saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    kept
}

/// Kills the program's process group (the program and the children it did not move out).
struct GroupGuard {
    pid: Option<u32>,
}

impl GroupGuard {
    fn disarm(&mut self) {
        self.pid = None;
    }

    fn kill(&self) {
        #[cfg(unix)]
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        #[cfg(not(unix))]
        let _ = self.pid;
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
    fn cap_cuts_on_a_char_boundary_and_says_so() {
        let s = "é".repeat(100);
        let c = cap(s, 51);
        assert!(c.len() <= 51);
        assert!(c.ends_with("[… output cut]"));
        assert_eq!(cap("short".into(), 51), "short");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn output_is_capped_and_the_program_not_blocked() {
        let plan = CommandPlan::argv([
            "sh",
            "-c",
            "head -c 200000 /dev/zero | tr '\\0' x; echo done >&2",
        ]);
        let f = run_command(&plan, Duration::from_secs(10)).await;
        assert!(f.success(), "{:?}", f.ending);
        assert!(f.stdout.len() <= OUTPUT_CAP);
        assert_eq!(f.hint(), Some("done"));
        assert!(f.output().len() <= OUTPUT_CAP);
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found() {
        let f = run_command(
            &CommandPlan::argv(["/nonexistent/pw-nope"]),
            Duration::from_secs(1),
        )
        .await;
        assert!(f.not_found());
        assert!(f
            .describe(Duration::from_secs(1))
            .starts_with("cannot start:"));
    }
}
