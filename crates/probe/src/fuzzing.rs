//! Entry points for the fuzz targets (`fuzz/`, see docs/fuzzing.md): the protocol reply
//! parsers as the engine meets them, through each preset's dialog. Not an API: hidden from
//! the docs, and nothing else calls it.
//!
//! Invariants: a verdict, once decided on a prefix, stays the same when more data arrives
//! (the engine stops reading at the first decision), closing the connection never changes a
//! decided verdict, and a match uses up a part of the data that itself matches.
//!
//! One deliberate exception, found by the fuzzer: PostgreSQL's answer to `SSLRequest` is one
//! byte, so `S` alone matches while `S` followed by more in the same read (an SSH banner,
//! `SSH-2.0-…`) does not (see `presets::postgres`). Its early match is not held to the rule.

use crate::presets::ALL;
use crate::{Expectation, Host, ProbeSpec, Step, Target, Verdict};

/// The expect steps of preset number `preset_index` (modulo their count).
fn expectations(preset_index: usize, starttls: bool) -> Vec<Expectation> {
    let preset = ALL[preset_index % ALL.len()];
    let mut spec = ProbeSpec::connect(Target {
        host: Host::Name("fuzz.invalid".into()),
        port: preset.default_port,
    });
    if preset.apply(&mut spec, starttls).is_err() {
        return Vec::new();
    }
    spec.steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Expect(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// The PostgreSQL reply parser's name: the exception in the module docs.
const POSTGRES: &str = "postgres answer S or N to SSLRequest";

/// Checks the invariants of the module docs for one expectation on `data`.
fn check(expectation: &Expectation, data: &[u8]) {
    let full = expectation.evaluate(data);
    // Every prefix that decided must agree with the whole.
    for cut in (0..data.len()).step_by(data.len() / 16 + 1) {
        let early = expectation.evaluate(&data[..cut]);
        let length_matters =
            early == Verdict::Matched && format!("{expectation:?}").contains(POSTGRES);
        if early != Verdict::Undecided && !length_matters {
            assert_eq!(
                early,
                full,
                "{expectation:?}: {early:?} on the first {cut} bytes, {full:?} on all {}",
                data.len()
            );
        }
    }
    let at_close = expectation.evaluate_at_close(data);
    if full != Verdict::Undecided {
        assert_eq!(
            at_close, full,
            "{expectation:?}: closing changed a decided verdict"
        );
    }
    let consumed = expectation.consumed(data, false);
    assert_eq!(
        consumed.is_some(),
        full == Verdict::Matched,
        "{expectation:?}: consumed disagrees with the verdict {full:?}"
    );
    if let Some(c) = consumed {
        assert!(
            c.end <= data.len(),
            "{expectation:?}: used up more than it got"
        );
        assert_eq!(
            expectation.evaluate(&data[..c.end]),
            Verdict::Matched,
            "{expectation:?}: the part used up does not match on its own"
        );
    }
}

/// The first byte picks the preset (its low bit: with STARTTLS, whose dialog has more
/// replies); the rest is what the server sent.
pub fn reply_parsers(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    for e in expectations(usize::from(which >> 1), which & 1 == 1) {
        check(&e, rest);
    }
    // The shared reply helpers on their own.
    let _ = crate::reply::final_code(rest);
    let _ = crate::reply::ftp_final_code(rest);
}

#[cfg(test)]
mod tests {
    /// The committed seeds and past findings (docs/fuzzing.md) keep holding the invariants.
    #[test]
    fn the_reply_parsers_corpus_holds_the_invariants() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/reply_parsers"
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("the corpus exists") {
            super::reply_parsers(&std::fs::read(entry.unwrap().path()).unwrap());
            seen += 1;
        }
        assert!(seen > 10, "only {seen} seeds");
    }
}
