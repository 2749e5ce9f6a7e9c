//! What the harness reads from the kernel: a process's CPU time and peak RSS, the whole box's
//! busy time (to tell our load from other tenants'), the machine's description, and the open
//! file limit. Linux only: everything comes from `/proc`.

use std::fs;
use std::time::Duration;

use anyhow::Context;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft open-file limit to the hard one: 1,000 listeners plus their connections
/// do not fit in the usual soft limit of 1,024. Best effort; children inherit it.
pub fn raise_file_limit() {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}

/// The soft open-file limit now in force (`None`: unlimited).
pub fn file_limit() -> Option<u64> {
    getrlimit(Resource::Nofile).current
}

/// CPU time of a process, all its threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The time spent between `earlier` and `self`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// User and system CPU time of process `pid` (`"self"` for this one).
pub fn cpu_times(pid: &str) -> anyhow::Result<CpuTimes> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 of stat(5) is fields[0]; utime is field 14, stime field 15.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {} in {path}", i + 3))
    };
    Ok(CpuTimes {
        user: ticks_to_duration(ticks(11)?),
        system: ticks_to_duration(ticks(12)?),
    })
}

/// The kernel's per-CPU softirq threads: under load they carry part of the loopback
/// traffic's processing, which belongs to the benchmark, not to other tenants.
pub fn softirq_threads() -> Vec<String> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("ksoftirqd/"))
        })
        .collect()
}

/// Total CPU time of several processes; ones that vanished count as zero.
pub fn cpu_time_of(pids: &[String]) -> Duration {
    pids.iter()
        .filter_map(|p| cpu_times(p).ok())
        .map(CpuTimes::total)
        .sum()
}

/// Busy time of the whole machine so far (every CPU, every process, interrupts included).
pub fn box_busy_time() -> anyhow::Result<Duration> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle, iowait and steal are not work
    // done on this box's behalf.
    let busy = [0usize, 1, 2, 5, 6]
        .iter()
        .map(|&i| v.get(i).copied().unwrap_or(0))
        .sum();
    Ok(ticks_to_duration(busy))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz)
}

/// A `Vm*` line of `/proc/self/status` in KiB (`VmHWM`: peak RSS, `VmRSS`: current RSS).
pub fn status_kib(field: &str) -> anyhow::Result<u64> {
    status_kib_of("self", field)
}

/// A `Vm*` line of `/proc/<pid>/status` in KiB.
pub fn status_kib_of(pid: &str, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// One line saying what machine this is: CPU model, CPU count, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / (1024.0 * 1024.0));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} × {model}, {mem_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(cpu_times("self").unwrap().total() > Duration::ZERO);
        assert!(!softirq_threads().is_empty());
        assert!(box_busy_time().unwrap() > Duration::ZERO);
        assert!(status_kib("VmHWM").unwrap() >= status_kib("VmRSS").unwrap() / 2);
        assert!(status_kib("VmNope").is_err());
        assert!(machine().contains("Linux"));
    }
}
