//! Durations written the way people say them: `"30s"`, `"5m"`, `"200ms"`, `"1h 30m"`.
//!
//! A bare number is refused: `interval = 30` could mean seconds or milliseconds, and a config
//! that guesses wrong checks 1000 times too often.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Parses `"30s"`, `"5m"`, `"200ms"`, `"1h 30m"`; the message names the text and the problem.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| match e {
        humantime::DurationError::UnknownUnit { unit, value, .. } if unit.is_empty() => {
            format!("invalid duration {text:?}: needs a unit, e.g. \"{value}s\" or \"{value}ms\"")
        }
        humantime::DurationError::UnknownUnit { unit, .. } => format!(
            "invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m, h, d, e.g. \"30s\")"
        ),
        humantime::DurationError::NumberExpected(_) | humantime::DurationError::Empty => {
            format!(
                "invalid duration {text:?}: write a number and a unit, e.g. \"30s\" or \"200ms\""
            )
        }
        other => format!("invalid duration {text:?}: {other}"),
    })
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string like \"30s\", \"5m\" or \"200ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" or \"{v}ms\", not {v}"
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" or \"{v}ms\", not {v}"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write e.g. \"{}ms\", not {v}",
                    (v * 1000.0).round()
                )))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn names_the_bad_text() {
        assert_eq!(
            parse("5 parsecs").unwrap_err(),
            "invalid duration \"5 parsecs\": unknown unit \"parsecs\" (use ms, s, m, h, d, e.g. \"30s\")"
        );
        assert_eq!(
            parse("30").unwrap_err(),
            "invalid duration \"30\": needs a unit, e.g. \"30s\" or \"30ms\""
        );
        assert_eq!(
            parse("fast").unwrap_err(),
            "invalid duration \"fast\": write a number and a unit, e.g. \"30s\" or \"200ms\""
        );
    }
}
