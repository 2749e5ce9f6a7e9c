//! Change notification: text-mode `nft monitor` prints one line per change and, at the end of
//! each transaction, `# new generation N by process PID (COMM)` — which names the culprit.
//! [`Watch`] groups those lines into one [`Change`] per transaction.

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use tokio::process::Child;

use crate::exec::ExecError;
use crate::Error;

/// How long to wait for the generation line once other lines arrived: a transaction's lines
/// come in one burst, so a longer gap means the line will not come (older kernels, odd tools).
const GENERATION_WAIT: Duration = Duration::from_millis(20);
/// At most this many lines are kept per change (a flush of a big ruleset prints thousands).
const MAX_LINES: usize = 1000;
/// How long [`Watch::start`] waits for the monitor to subscribe before returning anyway.
const SUBSCRIBE_WAIT: Duration = Duration::from_millis(1000);

/// The process that committed a transaction, as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Culprit {
    pub pid: u32,
    /// The process name (`nft`, `iptables-nft`, `firewalld`), at most 15 characters.
    pub comm: String,
}

/// One committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The ruleset generation it produced, when the monitor printed it.
    pub generation: Option<u64>,
    pub culprit: Option<Culprit>,
    /// What changed, as `nft monitor` printed it (`delete table inet filter`), generation line
    /// included; capped at 1000 lines.
    pub lines: Vec<String>,
}

/// What the monitor's output is read from: its stdout, or recorded text in tests.
type Source = Lines<BufReader<Box<dyn AsyncRead + Send + Unpin>>>;

/// A running `nft monitor`. Dropping it kills the process.
pub struct Watch {
    /// Held so that dropping the watch kills the monitor (`kill_on_drop`).
    child: Option<Child>,
    lines: Source,
    ended: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("pid", &self.child.as_ref().and_then(Child::id))
            .field("ended", &self.ended)
            .finish()
    }
}

impl Watch {
    /// Starts `nft monitor` in the caller's network namespace and waits (up to a second) until
    /// it has subscribed, so a change made right after this returns is seen.
    pub async fn start() -> Result<Watch, Error> {
        let command = "nft monitor".to_string();
        let mut child = tokio::process::Command::new("nft")
            .arg("monitor")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("LC_ALL", "C")
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    ExecError::NotFound {
                        command: command.clone(),
                        program: "nft".into(),
                    }
                } else {
                    ExecError::Spawn {
                        command: command.clone(),
                        source,
                    }
                }
            })?;
        let stdout = child.stdout.take().ok_or_else(|| Error::Failed {
            command: command.clone(),
            message: "no stdout pipe".into(),
        })?;
        if let Some(pid) = child.id() {
            wait_subscribed(pid).await;
        }
        let mut watch = Watch::from_reader(Box::new(stdout));
        watch.child = Some(child);
        Ok(watch)
    }

    /// Groups lines read from `reader` (recorded monitor output in tests).
    fn from_reader(reader: Box<dyn AsyncRead + Send + Unpin>) -> Watch {
        Watch {
            child: None,
            lines: BufReader::new(reader).lines(),
            ended: false,
        }
    }

    /// The next transaction; `None` once the monitor process has ended (restart it, or poll).
    pub async fn next(&mut self) -> Option<Change> {
        let mut change = Change {
            generation: None,
            culprit: None,
            lines: Vec::new(),
        };
        loop {
            if self.ended {
                return (!change.lines.is_empty()).then_some(change);
            }
            let line = if change.lines.is_empty() {
                self.lines.next_line().await
            } else {
                // `next_line` is cancel safe: a timeout loses no input.
                match tokio::time::timeout(GENERATION_WAIT, self.lines.next_line()).await {
                    Ok(line) => line,
                    Err(_) => return Some(change),
                }
            };
            let line = match line {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => {
                    self.ended = true;
                    // It closed its output, so it is gone or useless: make sure it is gone.
                    if let Some(child) = self.child.as_mut() {
                        let _ = child.start_kill();
                    }
                    continue;
                }
            };
            if let Some((generation, pid, comm)) = parse_generation(&line) {
                change.generation = Some(generation);
                change.culprit = Some(Culprit { pid, comm });
                change.lines.push(line);
                return Some(change);
            }
            if change.lines.len() < MAX_LINES {
                change.lines.push(line);
            }
        }
    }
}

/// `# new generation 5 by process 7350 (nft)` → `(5, 7350, "nft")`.
pub fn parse_generation(line: &str) -> Option<(u64, u32, String)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"^# new generation (\d+) by process (\d+) \((.*)\)\s*$")
            .expect("static regex is valid")
    });
    let caps = re.captures(line)?;
    Some((
        caps[1].parse().ok()?,
        caps[2].parse().ok()?,
        caps[3].to_string(),
    ))
}

/// Waits until process `pid` holds a netfilter netlink socket (protocol 12) subscribed to a
/// multicast group, per `/proc/thread-self/net/netlink` of the caller's namespace. Gives up
/// quietly after [`SUBSCRIBE_WAIT`] or where that file does not exist.
async fn wait_subscribed(pid: u32) {
    let deadline = tokio::time::Instant::now() + SUBSCRIBE_WAIT;
    while tokio::time::Instant::now() < deadline {
        let Ok(table) = std::fs::read_to_string("/proc/thread-self/net/netlink") else {
            return;
        };
        if netlink_subscribed(&table, pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn netlink_subscribed(table: &str, pid: u32) -> bool {
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        matches!(cols.as_slice(), [_, "12", p, groups, ..]
            if p.parse::<u32>().ok() == Some(pid)
                && u64::from_str_radix(groups, 16).is_ok_and(|g| g != 0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_generation_lines_and_nothing_else() {
        assert_eq!(
            parse_generation("# new generation 6 by process 19030 (iptables-nft)"),
            Some((6, 19030, "iptables-nft".to_string()))
        );
        assert_eq!(parse_generation("delete table inet filter"), None);
        assert_eq!(
            parse_generation("# new generation x by process 1 (nft)"),
            None
        );
    }

    #[test]
    fn recorded_monitor_output_has_one_generation_per_transaction() {
        let text = include_str!("../../tests/data/nft_monitor.txt");
        let generations: Vec<(u64, u32, String)> =
            text.lines().filter_map(parse_generation).collect();
        let comms: Vec<&str> = generations.iter().map(|g| g.2.as_str()).collect();
        // flush, load, policy change, iptables-nft -P, iptables-nft -A, delete by handle
        assert_eq!(
            comms,
            ["nft", "nft", "nft", "iptables-nft", "iptables-nft", "nft"]
        );
        assert!(generations.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    }

    fn changes_of(text: &'static str) -> Vec<Change> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut watch = Watch::from_reader(Box::new(text.as_bytes()));
            let mut changes = Vec::new();
            while let Some(change) = watch.next().await {
                changes.push(change);
            }
            changes
        })
    }

    #[test]
    fn groups_recorded_lines_into_one_change_per_transaction() {
        let changes = changes_of(include_str!("../../tests/data/nft_monitor.txt"));
        assert_eq!(changes.len(), 6);
        let flush = &changes[0];
        assert_eq!(flush.generation, Some(3));
        assert_eq!(flush.culprit.as_ref().unwrap().comm, "nft");
        assert!(flush
            .lines
            .contains(&"delete table inet filter".to_string()));
        assert!(changes[2].lines[0].contains("policy accept;"));
        assert_eq!(changes[3].culprit.as_ref().unwrap().comm, "iptables-nft");
        assert_eq!(changes[5].lines.len(), 2);
    }

    #[test]
    fn lines_without_a_generation_line_are_reported_after_a_short_wait() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (reader, mut writer) = tokio::io::duplex(1024);
            let mut watch = Watch::from_reader(Box::new(reader));
            tokio::io::AsyncWriteExt::write_all(&mut writer, b"delete table inet filter\n")
                .await
                .unwrap();
            let change = tokio::time::timeout(Duration::from_secs(1), watch.next())
                .await
                .expect("reported without waiting for more input")
                .unwrap();
            assert_eq!(change.generation, None);
            assert_eq!(change.lines, ["delete table inet filter"]);
            drop(writer);
            assert_eq!(watch.next().await, None);
        });
    }

    #[test]
    fn finds_the_subscribed_netfilter_socket_of_a_pid() {
        let table = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
            00000000cdcdbc1b 12  20227      00000140 0        0        0     2        0        168845959\n\
            00000000f90417e5 12  0          00000000 0        0        0     2        0        168845951\n";
        assert!(netlink_subscribed(table, 20227));
        assert!(!netlink_subscribed(table, 0));
        assert!(!netlink_subscribed(table, 1));
    }
}
