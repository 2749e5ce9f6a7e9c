//! The README and `docs/*.md` as a newcomer meets them: every command `--help` shows is listed
//! in the README, `ports snapshot` writes where the docs say, and every ```sh block runs as
//! written.
//!
//! The rule for code blocks: a ```sh block runs (under `bash -e -o pipefail`, with the
//! `portwarden` under test first on `PATH`) and must exit 0; one that cannot run here says why in
//! a visible line `# not run by the docs test: REASON`. Synopses with placeholders are ```text,
//! transcripts (`$ command` and its output) ```console; neither runs.
//!
//! The blocks run in a network namespace and a mount namespace of their own: `127.0.0.1:9898`
//! is a daemon started there from `/etc/portwarden/portwarden.toml`, and `/etc` and `/var/lib`
//! are overlays whose writes land in the test's scratch directory, so `/etc/portwarden/…` in an
//! example is written as the docs say without touching the machine's.

use crate::support;
use crate::support::text;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What a block that cannot run here says, followed by why.
const NOT_RUN: &str = "# not run by the docs test:";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn portwarden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portwarden"))
}

/// A fenced code block of a Markdown file.
#[derive(Debug)]
struct Block {
    /// `docs/api.md:87`: the file and the line of the opening fence.
    place: String,
    /// The fence's language (`sh`, `text`, …; empty when none).
    lang: String,
    text: String,
}

fn blocks(path: &Path) -> Vec<Block> {
    let name = path
        .strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string();
    let source = std::fs::read_to_string(path).unwrap();
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in source.lines().enumerate() {
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    place: format!("{name}:{}", i + 1),
                    lang: info.split_whitespace().next().unwrap_or("").to_string(),
                    text: String::new(),
                });
            }
            (Some(_), Some(_)) => found.push(open.take().unwrap()),
            (Some(b), None) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{name}: a code block is never closed");
    found
}

/// README.md, then docs/*.md in name order.
fn markdown_files() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    let mut files = vec![repo().join("README.md")];
    files.extend(docs);
    files
}

/// The reason a block gives for not running, if it gives one.
fn not_run_reason(block: &Block) -> Option<&str> {
    block
        .text
        .lines()
        .find_map(|l| l.trim().strip_prefix(NOT_RUN))
        .map(str::trim)
}

// --- the README's command list ------------------------------------------------------------

/// The subcommands `portwarden PATH… --help` lists under "Commands:" (without `help`).
fn subcommands(path: &[String]) -> Vec<String> {
    let out = portwarden().args(path).arg("--help").output().unwrap();
    assert!(out.status.success(), "{path:?} --help: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A command's line is indented by two; its wrapped description by more.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path `--help` shows: `["firewall"]`, `["firewall", "baseline", "save"]`, ….
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        assert!(
            path.len() <= 4,
            "commands nested deeper than expected: {path:?}"
        );
        for name in subcommands(&path) {
            let mut next = path.clone();
            next.push(name);
            paths.push(next.clone());
            todo.push(next);
        }
    }
    paths.sort();
    paths
}

/// Whether a README line `portwarden a b|c …` names `path` (`b|c` stands for either).
fn line_names(line: &str, path: &[String]) -> bool {
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    path.len() <= words.len()
        && path
            .iter()
            .zip(&words)
            .all(|(want, word)| word.split('|').any(|alt| alt == want))
}

#[test]
fn readme_lists_every_command_that_help_shows() {
    let lines: Vec<String> = blocks(&repo().join("README.md"))
        .into_iter()
        .flat_map(|b| b.text.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.starts_with("portwarden "))
        .collect();
    let paths = command_paths();
    // The walk itself must have worked: these are known to exist.
    for known in [
        &["actions"][..],
        &["silence", "remove"],
        &["firewall", "resume"],
        &["firewall", "baseline", "save"],
    ] {
        assert!(
            paths.iter().any(|p| p == known),
            "`--help` did not list {known:?}; found {paths:?}"
        );
    }
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| !lines.iter().any(|l| line_names(l, p)))
        .map(|p| format!("portwarden {}", p.join(" ")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's command list misses what `--help` shows:\n{}",
        missing.join("\n")
    );
}

// --- ports snapshot -------------------------------------------------------------------------

#[test]
fn ports_snapshot_creates_a_missing_parent_directory() {
    let dir = support::temp_dir("snapshot-parent");
    // As `/etc/portwarden/ports.json` on a host where nothing made `/etc/portwarden` yet.
    let file = dir.join("etc/portwarden/ports.json");
    let out = portwarden()
        .args(["ports", "snapshot"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("to {}", file.display())),
        "{}",
        text(&out)
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(saved["listeners"].is_array(), "{saved}");
    assert!(
        !file.with_extension("tmp").exists(),
        "the temporary file stays"
    );

    // A parent that cannot be made is named in the error.
    std::fs::write(dir.join("plain-file"), "").unwrap();
    let blocked = dir.join("plain-file/sub/ports.json");
    let out = portwarden()
        .args(["ports", "snapshot"])
        .arg(&blocked)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot create the directory {}",
            dir.join("plain-file/sub").display()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// --- examples people copy -------------------------------------------------------------------

#[test]
fn reboot_steps_in_examples_are_safe_as_written() {
    // Every reboot step a reader may copy: examples/portwarden.toml (= `config example`) and
    // the toml blocks of README.md and docs/*.md.
    let example = repo().join("examples/portwarden.toml");
    let mut sources = vec![(
        "examples/portwarden.toml".to_string(),
        std::fs::read_to_string(&example).unwrap(),
    )];
    for file in markdown_files() {
        for b in blocks(&file).into_iter().filter(|b| b.lang == "toml") {
            sources.push((b.place, b.text));
        }
    }
    let mut steps = 0;
    let mut unsafe_steps = Vec::new();
    for (place, source) in &sources {
        for line in source.lines().filter(|l| l.contains("type = \"reboot\"")) {
            steps += 1;
            let missing: Vec<&str> = ["min_uptime = ", "hold_off = ", "dry_run = true"]
                .into_iter()
                .filter(|key| !line.contains(key))
                .collect();
            if !missing.is_empty() {
                unsafe_steps.push(format!("{place}: `{}` lacks {missing:?}", line.trim()));
            }
        }
    }
    assert!(steps >= 2, "the reboot examples were not found");
    assert!(unsafe_steps.is_empty(), "{}", unsafe_steps.join("\n"));
}

// --- every sh block runs ----------------------------------------------------------------------

#[test]
fn every_sh_block_runs_or_says_why_not() {
    let mut unclear = Vec::new();
    for file in markdown_files() {
        for b in blocks(&file) {
            match b.lang.as_str() {
                "bash" | "shell" | "zsh" => unclear.push(format!(
                    "{}: ```{} block: use ```sh (runs), ```text (synopsis) or ```console \
                     (transcript)",
                    b.place, b.lang
                )),
                "sh" => {
                    if let Some(reason) = not_run_reason(&b) {
                        if reason.len() < 10 {
                            unclear.push(format!("{}: say why it cannot run", b.place));
                        }
                    }
                    for l in b.text.lines().filter(|l| l.starts_with("$ ")) {
                        unclear.push(format!(
                            "{}: `{l}`: a prompt in a sh block (a transcript is ```console)",
                            b.place
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(unclear.is_empty(), "{}", unclear.join("\n"));
}

/// A network and mount namespace (`unshare`) kept alive by a `sleep`, entered with `nsenter`:
/// loopback up, `/etc` and `/var/lib` overlaid with directories under `dir`.
struct Sandbox {
    holder: Child,
    dir: PathBuf,
    /// `PATH` for the examples: the tested `portwarden`, a `sudo` that just runs its arguments.
    path: String,
    children: Vec<Child>,
}

impl Sandbox {
    /// `None` (the test skips) without root, `unshare` or the tools the examples use, except
    /// under `CI`, where that fails. `etc` holds files put under `/etc/portwarden` first.
    fn new(tag: &str, etc: &[(&str, &str)]) -> Option<Self> {
        let have = |tool: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let missing: Vec<&str> = [
            "unshare", "nsenter", "nft", "socat", "curl", "jq", "timeout",
        ]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
        let skip = |why: String| {
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
        };
        if !missing.is_empty() {
            skip(format!(
                "{} missing (scripts/install-test-deps installs them)",
                missing.join(", ")
            ));
            return None;
        }
        let dir = support::temp_dir(tag);
        for d in [
            "etc-up/portwarden",
            "etc-work",
            "lib-up",
            "lib-work",
            "bin",
            "work",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for (name, content) in etc {
            std::fs::write(dir.join("etc-up/portwarden").join(name), content).unwrap();
        }
        let sudo = dir.join("bin/sudo");
        std::fs::write(&sudo, "#!/bin/sh\nexec \"$@\"\n").unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&sudo)
            .status()
            .unwrap();
        let d = dir.display();
        let script = format!(
            "mount -t overlay pw-etc -o lowerdir=/etc,upperdir={d}/etc-up,workdir={d}/etc-work /etc \
             && mount -t overlay pw-lib -o lowerdir=/var/lib,upperdir={d}/lib-up,workdir={d}/lib-work /var/lib \
             && ip link set lo up && echo ready && exec sleep 600"
        );
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // One line, or end of file when the script fails: bounded by the script itself.
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let out = holder.wait_with_output().unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            skip(format!(
                "cannot make a network and mount namespace with overlays (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_portwarden"))
            .parent()
            .unwrap();
        let path = format!(
            "{}:{}:{}",
            bin.display(),
            dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Some(Self {
            holder,
            dir,
            path,
            children: Vec::new(),
        })
    }

    /// `program` inside both namespaces, with the examples' `PATH`, in a scratch directory.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.holder.id().to_string(),
            "-n",
            "-m",
            "--",
            program,
        ])
        .env("PATH", &self.path)
        .current_dir(self.dir.join("work"))
        .stdin(Stdio::null());
        c
    }

    /// Starts `command` (made by [`Self::cmd`]) in the background, killed on drop.
    fn start(&mut self, mut command: Command) {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// Runs `script` with bash (`-e -o pipefail`), killed after `secs` seconds.
    fn bash(&self, script: &str, secs: u64) -> Output {
        let mut child = self
            .cmd("bash")
            .args(["-e", "-o", "pipefail", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // Past the deadline: killed, so the output below reports a signal, not success.
        let _ = child.kill();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The config docs/api.md shows for its examples (a monitor `web`, a token file), checked
/// every second here so the examples need not wait.
fn api_example_config() -> String {
    let api = repo().join("docs/api.md");
    let shown = blocks(&api)
        .into_iter()
        .find(|b| b.lang == "toml" && b.text.contains("name = \"web\""))
        .expect("docs/api.md shows the config of its examples");
    format!(
        "{}\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
        shown.text
    )
}

#[test]
fn sh_examples_in_readme_and_docs_run_as_written() {
    let config = api_example_config();
    let Some(mut sandbox) = Sandbox::new(
        "docs",
        &[
            ("portwarden.toml", &config),
            ("api-token", "docs-example-token\n"),
        ],
    ) else {
        return;
    };
    // A host as the docs assume one: its firewall on (inbound denied but for loopback), so the
    // guard of the daemon below has nothing to report.
    let firewall = sandbox.bash(
        "nft -f - <<'EOF'\ntable inet filter {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    iif lo accept\n    ct state established,related accept\n  }\n}\nEOF",
        10,
    );
    assert!(firewall.status.success(), "{}", text(&firewall));
    // What the examples talk to: `web` on 8080, an SSH greeting on 22 (docs/check_tcp.md).
    let mut web = sandbox.cmd("socat");
    web.args([
        "TCP-LISTEN:8080,bind=127.0.0.1,fork,reuseaddr",
        "SYSTEM:echo hello",
    ]);
    sandbox.start(web);
    let mut ssh = sandbox.cmd("socat");
    ssh.args([
        "TCP-LISTEN:22,bind=127.0.0.1,fork,reuseaddr",
        "SYSTEM:echo SSH-2.0-OpenSSH_9.2p1",
    ]);
    sandbox.start(ssh);
    // The daemon as the docs run it: no -c, so /etc/portwarden/portwarden.toml.
    let mut daemon = sandbox.cmd("portwarden");
    daemon.arg("run");
    sandbox.start(daemon);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = sandbox.bash(
            "curl -sf http://127.0.0.1:9898/api/v1/monitors/web | jq -e '.status == \"ok\"'",
            5,
        );
        if probe.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never reported `web` ok: {}",
            text(&probe)
        );
        thread::sleep(Duration::from_millis(200));
    }

    let mut ran = Vec::new();
    let mut failed = Vec::new();
    for file in markdown_files() {
        for b in blocks(&file) {
            if b.lang != "sh" || not_run_reason(&b).is_some() {
                continue;
            }
            let out = sandbox.bash(&b.text, 30);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let problem = if !out.status.success() {
                Some("it failed")
            } else if stdout.lines().any(|l| l.trim() == "null") {
                Some("it printed null: it names something that does not exist")
            } else if stdout.contains("\"error\"") {
                Some("the API answered with an error")
            } else {
                None
            };
            if let Some(problem) = problem {
                failed.push(format!(
                    "{}: {problem}\n{}\n{}",
                    b.place,
                    b.text.trim_end(),
                    text(&out)
                ));
            }
            ran.push(b.place);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} sh blocks failed:\n\n{}",
        failed.len(),
        ran.len(),
        failed.join("\n\n")
    );
    // The examples this test was written for: a doc that loses them should notice.
    for must in [
        "README.md",
        "docs/api.md",
        "docs/ports.md",
        "docs/check_tcp.md",
    ] {
        assert!(
            ran.iter().any(|p| p.starts_with(must)),
            "no sh block of {must} ran: {ran:?}"
        );
    }
}
