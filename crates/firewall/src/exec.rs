//! Running the firewall tools: a command is plain data (program, argv, stdin), so a backend's
//! plan can be tested on the argv it would run, and one runner executes it with a time limit.

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// One program to run: argv without a shell, and optional input on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Command {
    pub fn new(program: &str, args: &[&str]) -> Self {
        Self {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: None,
        }
    }

    pub fn with_stdin(mut self, input: impl Into<String>) -> Self {
        self.stdin = Some(input.into());
        self
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for arg in &self.args {
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                write!(f, " '{arg}'")?;
            } else {
                write!(f, " {arg}")?;
            }
        }
        Ok(())
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The first non-empty stderr line, else stdout's: what a person wants in an error.
    pub fn complaint(&self) -> String {
        let first = |s: &str| {
            s.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(String::from)
        };
        first(&self.stderr)
            .or_else(|| first(&self.stdout))
            .unwrap_or_else(|| match self.code {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            })
    }
}

/// Why a command could not be run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("`{command}`: {program} is not installed")]
    NotFound { command: String, program: String },
    #[error("`{command}` could not start: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
}

/// Runs commands with a time limit. Commands inherit the caller's network namespace, which is
/// how tests point every backend at a namespace they created.
#[derive(Debug, Clone)]
pub struct Runner {
    pub timeout: Duration,
}

impl Default for Runner {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
        }
    }
}

impl Runner {
    /// Runs `cmd` to its end. A non-zero exit is an `Output`, not an error: the backend decides
    /// what it means (`firewall-cmd --state` exits 252 for "not running").
    pub async fn run(&self, cmd: &Command) -> Result<Output, ExecError> {
        let mut child = tokio::process::Command::new(&cmd.program);
        child
            .args(&cmd.args)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .kill_on_drop(true);
        let mut child = child.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ExecError::NotFound {
                    command: cmd.to_string(),
                    program: cmd.program.clone(),
                }
            } else {
                ExecError::Spawn {
                    command: cmd.to_string(),
                    source,
                }
            }
        })?;
        let input = cmd.stdin.clone();
        let mut stdin = child.stdin.take();
        let finish = async move {
            if let (Some(pipe), Some(text)) = (stdin.as_mut(), input) {
                // A tool that exits before reading all of its input reports that itself.
                let _ = pipe.write_all(text.as_bytes()).await;
            }
            drop(stdin);
            child.wait_with_output().await
        };
        match tokio::time::timeout(self.timeout, finish).await {
            Err(_) => Err(ExecError::Timeout {
                command: cmd.to_string(),
                timeout: self.timeout,
            }),
            Ok(Err(source)) => Err(ExecError::Spawn {
                command: cmd.to_string(),
                source,
            }),
            Ok(Ok(out)) => Ok(Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }

    /// Runs `cmd` and insists on exit status 0.
    pub async fn run_ok(&self, cmd: &Command) -> Result<Output, crate::Error> {
        let out = self.run(cmd).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(crate::Error::Failed {
                command: cmd.to_string(),
                message: out.complaint(),
            })
        }
    }
}
