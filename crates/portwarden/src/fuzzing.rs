//! Entry points for the fuzz targets (`fuzz/`, see docs/fuzzing.md): each takes the raw
//! input an operator or a client could hand portwarden, runs the real code on it, and checks
//! what is cheap to check beyond "no panic". Not an API: hidden from the docs, and nothing
//! else calls it. None of them connects anywhere.

use std::ffi::OsString;
use std::path::Path;

use axum::http::{HeaderMap, HeaderValue, Uri};

use crate::api::blackbox::Modules;

/// The config loader on one file's text: a refused config names at least one problem, and
/// every problem is one line placed inside the text it was given.
pub fn config(text: &str) {
    let path = Path::new("fuzz.toml");
    let Err(errors) = crate::config::load_text(path, text) else {
        return;
    };
    assert!(
        !errors.problems().is_empty(),
        "a refused config names no problem"
    );
    let lines: Vec<&str> = text.split('\n').collect();
    for problem in errors.problems() {
        assert_eq!(problem.file, path, "a problem names another file");
        assert!(
            !problem.message.is_empty() && !problem.message.contains('\n'),
            "a problem is not one line: {:?}",
            problem.message
        );
        if let Some((line, col)) = problem.position {
            let Some(shown) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
                panic!("problem at line {line}, the text has {}", lines.len());
            };
            assert!(
                col >= 1 && col <= shown.chars().count() + 1,
                "problem at {line}:{col}, the line has {} characters",
                shown.chars().count()
            );
        }
    }
}

/// blackbox.yml translation: a file that loads serves every module it names (a tcp one, or
/// one refused with a reason), plus the built-in `tcp_connect`.
pub fn blackbox_yml(text: &str) {
    // Translation reads the TLS files a module names; a fuzzer must not open /dev/stdin or
    // a FIFO, so inputs with any `*_file` key are left out (their translation is a path).
    if names_a_file(text) {
        return;
    }
    let Ok((modules, _warnings)) = Modules::parse(text, Path::new("/nonexistent")) else {
        return;
    };
    let summary = modules.summary();
    assert!(
        summary.iter().any(|(name, _)| *name == "tcp_connect"),
        "tcp_connect is gone"
    );
    for (name, why) in &summary {
        assert!(
            why.is_none_or(|w| !w.is_empty()),
            "module {name:?} refused without a reason"
        );
    }
}

/// Whether any mapping key in the YAML ends in `_file` (after YAML's own escapes).
fn names_a_file(text: &str) -> bool {
    fn walk(v: &serde_norway::Value) -> bool {
        match v {
            serde_norway::Value::Mapping(m) => m.iter().any(|(k, v)| {
                k.as_str().is_some_and(|k| k.ends_with("_file")) || !k.is_string() || walk(v)
            }),
            serde_norway::Value::Sequence(items) => items.iter().any(walk),
            serde_norway::Value::Tagged(t) => walk(&t.value),
            _ => false,
        }
    }
    serde_norway::from_str::<serde_norway::Value>(text).map_or(true, |v| walk(&v))
}

/// The Nagios / check_tcp command line (`portwarden check …`, `check_tcp …`, `check_smtp …`,
/// a link name): arguments are the input's NUL-separated pieces. A check that builds names
/// a target that reads back as itself.
pub fn nagios_args(input: &[u8]) {
    let args: Vec<OsString> = input
        .split(|&b| b == 0)
        .map(|a| OsString::from(String::from_utf8_lossy(a).into_owned()))
        .collect();
    if let Some(target) = crate::cli::parse_only(args) {
        if let Err(e) = target.parse::<portwarden_probe::Target>() {
            panic!("the check's target {target:?} does not read back: {e}");
        }
    }
}

/// The `/probe` request: the input's first line is the query string, the second (if any)
/// the `X-Prometheus-Scrape-Timeout-Seconds` header. Read against the built-in module and
/// a blackbox module without a timeout. A request that can run has a budget the engine
/// can count down.
pub fn probe_query(input: &[u8]) {
    let mut parts = input.splitn(2, |&b| b == b'\n');
    let query = parts.next().unwrap_or_default();
    let Ok(uri) = Uri::try_from([b"/probe?".as_slice(), query].concat()) else {
        return;
    };
    let mut headers = HeaderMap::new();
    if let Some(value) = parts.next() {
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        headers.insert("X-Prometheus-Scrape-Timeout-Seconds", value);
    }
    let modules = probe_modules();
    let Ok(request) = crate::api::blackbox::read_request(&uri, &headers, modules) else {
        return;
    };
    assert!(!request.timeout.is_zero(), "a probe with no time at all");
    // The engine's deadline is now + the budget.
    assert!(
        std::time::Instant::now()
            .checked_add(request.timeout)
            .is_some(),
        "a budget of {:?} runs past the end of time",
        request.timeout
    );
    let _ = portwarden_probe::Target::parse_with_default(&request.target, None);
}

/// `tcp_connect` and a module without a timeout (only the scrape header bounds it).
fn probe_modules() -> &'static Modules {
    static MODULES: std::sync::OnceLock<Modules> = std::sync::OnceLock::new();
    MODULES.get_or_init(|| {
        let yml = "modules:\n  no_timeout:\n    prober: tcp\n  http_2xx:\n    prober: http\n";
        Modules::parse(yml, Path::new("/nonexistent"))
            .expect("the fuzz modules parse")
            .0
    })
}

#[cfg(test)]
mod tests {
    /// Runs `entry` on every file of `fuzz/corpus/<target>`: the committed seeds and past
    /// findings (docs/fuzzing.md) keep holding the invariants.
    fn replay(target: &str, entry: fn(&[u8])) {
        let dir = format!("{}/../../fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for file in std::fs::read_dir(&dir).expect("the corpus exists") {
            entry(&std::fs::read(file.unwrap().path()).unwrap());
            seen += 1;
        }
        assert!(seen > 0, "{dir} is empty");
    }

    fn text(entry: fn(&str)) -> impl Fn(&[u8]) {
        move |data| {
            if let Ok(t) = std::str::from_utf8(data) {
                entry(t);
            }
        }
    }

    #[test]
    fn the_fuzz_corpora_hold_the_invariants() {
        replay("config", |d| text(super::config)(d));
        replay("blackbox_yml", |d| text(super::blackbox_yml)(d));
        replay("nagios_args", super::nagios_args);
        replay("probe_query", super::probe_query);
    }
}
