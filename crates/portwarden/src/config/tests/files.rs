//! Files and directories: a directory merged in file-name order, conflicts across files,
//! relative paths, a missing path, an empty config, and a reload beside running monitors.

use super::*;

#[test]
fn a_reload_keeps_monitors_that_already_run_by_name_only() {
    let dir = temp_dir("load-beside");
    let path = dir.join("portwarden.toml");
    let text = "[[monitor]]\nname = \"a\"\ntarget = \"127.0.0.1:1\"\n\n[[monitor]]\nname = \"b\"\ntarget = \"127.0.0.1:2\"\n";
    std::fs::write(&path, text).unwrap();
    let first = load(&path).unwrap();
    assert!(first.unchanged.is_empty());
    let a = first
        .monitors
        .iter()
        .find(|m| m.name == "a")
        .unwrap()
        .definition;
    // "a" runs with this definition; "b" runs with another one (it changed), so is built.
    let running = |name: &str, definition| name == "a" && definition == a;
    let again = load_beside(&path, &running).unwrap();
    assert_eq!(again.unchanged, ["a"]);
    let built: Vec<&str> = again.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(built, ["b"]);
    // Unchanged monitors are still checked: a broken config is refused as before.
    std::fs::write(
        &path,
        format!("{text}[[monitor]]\nname = \"a\"\ntarget = \"127.0.0.1:3\"\n"),
    )
    .unwrap();
    let e = load_beside(&path, &running).unwrap_err().to_string();
    assert!(e.contains("duplicate monitor name"), "{e}");
}

#[test]
fn a_directory_is_merged_in_file_name_order() {
    let dir = temp_dir("merge");
    std::fs::write(
        dir.join("10-web.toml"),
        "[[monitor]]\nname = \"web\"\ntarget = \"127.0.0.1:80\"\nnotify = [\"ops\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("00-base.toml"),
        "[defaults]\ninterval = \"10s\"\n\n[[notifier]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"https://hooks.example.com/x\"\n\n\
         [[monitor]]\nname = \"ssh\"\ntarget = \"127.0.0.1:22\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("README"), "not toml").unwrap();
    std::fs::write(dir.join(".hidden.toml"), "garbage = [").unwrap();
    let c = load(&dir).unwrap();
    let names: Vec<&str> = c.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["ssh", "web"]);
    assert_eq!(
        c.monitors[1].interval,
        Duration::from_secs(10),
        "defaults from another file"
    );
    assert_eq!(c.files.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directory_conflicts_name_both_files() {
    let dir = temp_dir("conflict");
    std::fs::write(
        dir.join("a.toml"),
        "[defaults]\ninterval = \"10s\"\n\n[[monitor]]\nname = \"web\"\ntarget = \"h:80\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "[[monitor]]\nname = \"web\"\ntarget = \"h:81\"\n\n[defaults]\ntimeout = \"1s\"\n\n\
         [daemon]\nlisten = \"nope\"\n",
    )
    .unwrap();
    let errors = load(&dir).unwrap_err();
    let a = dir.join("a.toml").display().to_string();
    let b = dir.join("b.toml").display().to_string();
    let lines: Vec<String> = errors.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "{b}:2:8: monitor \"web\": name: duplicate monitor name, first defined at {a}:5:8"
            ),
            format!(
                "{b}:5:1: [defaults] is also defined at {a}:1:1; [daemon], [defaults] and \
                 [firewall] may each appear in only one file"
            ),
            format!(
                "{b}:9:10: daemon: listen: not an address and port: \"nope\"; write an IP address \
                 and port: \"127.0.0.1:9898\" (this host only), \"0.0.0.0:9898\" (every \
                 interface), \"[::1]:9898\" or \"localhost:9898\""
            ),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_path_is_not_found() {
    let errors = load(Path::new("/nonexistent/portwarden.toml")).unwrap_err();
    assert!(errors.is_not_found());
    assert_eq!(
        errors.problems()[0].to_string(),
        "/nonexistent/portwarden.toml: cannot read: No such file or directory (os error 2)"
    );
    let errors = load_str("[[monitor]]\nname = \"a\"\n").unwrap_err();
    assert!(!errors.is_not_found());
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let dir = temp_dir("relative");
    std::fs::write(
        dir.join("portwarden.toml"),
        "[daemon]\nstate_dir = \"state\"\n\n[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n\
         tls = { ca_file = \"missing-ca.pem\" }\n",
    )
    .unwrap();
    let errors = load(&dir.join("portwarden.toml")).unwrap_err();
    let line = errors.problems()[0].to_string();
    assert!(
        line.contains(&format!("CA file {}", dir.join("missing-ca.pem").display())),
        "{line}"
    );
    std::fs::write(
        dir.join("portwarden.toml"),
        "[daemon]\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let c = load(&dir.join("portwarden.toml")).unwrap();
    assert_eq!(c.daemon.state_dir, Some(dir.join("state")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_config_has_no_monitors() {
    let c = ok("# nothing yet\n");
    assert!(c.monitors.is_empty());
    assert_eq!(c.daemon, DaemonSettings::default());
}
