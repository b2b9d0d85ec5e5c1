//! TOML text → [`RawConfig`], collecting every type error and unknown key, not only the first.
//!
//! serde stops at the first error. To report all of them at once, the document is parsed into a
//! `toml::Value`, deserialized with `serde_path_to_error` to learn the failing key's path, and the
//! offending key is removed and the deserialization retried until it succeeds. The removed paths
//! are returned so the validator does not also call those keys "missing".

use std::collections::HashSet;

use serde_path_to_error::Segment;

use super::error::ConfigProblem;
use super::raw::RawConfig;

/// Bounds the retry loop; every round removes one key, so a file with more broken keys than
/// this is reported partially rather than looping for long.
const MAX_ROUNDS: usize = 256;

/// The outcome of reading the TOML text.
pub(crate) struct Parsed {
    /// The raw configuration with the broken keys left out; `None` when no usable structure remains.
    pub raw: Option<RawConfig>,
    /// Type errors and unknown keys, in path order.
    pub problems: Vec<ConfigProblem>,
    /// Dotted paths of the keys that were removed because of a problem.
    pub removed: HashSet<String>,
}

/// Parses `text`; a TOML syntax error is the only problem reported when the text is not TOML.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut document = match toml::from_str::<toml::Table>(text) {
        Ok(table) => toml::Value::Table(table),
        Err(error) => {
            return Parsed {
                raw: None,
                problems: vec![ConfigProblem::Syntax {
                    message: error.to_string().trim_end().to_owned(),
                }],
                removed: HashSet::new(),
            };
        }
    };
    let mut problems = Vec::new();
    let mut removed = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let error = match serde_path_to_error::deserialize::<_, RawConfig>(document.clone()) {
            Ok(raw) => {
                return Parsed {
                    raw: Some(raw),
                    problems,
                    removed,
                };
            }
            Err(error) => error,
        };
        let segments: Vec<Segment> = error.path().iter().cloned().collect();
        let key = display_path(&segments);
        problems.push(problem_for(key, error.inner().message()));
        match remove(&mut document, &segments) {
            Some(path) => {
                removed.insert(path);
            }
            // Nothing left to remove at that path: further rounds would fail the same way.
            None => break,
        }
    }
    Parsed {
        raw: None,
        problems,
        removed,
    }
}

/// Turns serde's message into a problem; unknown fields get their own wording.
fn problem_for(key: String, message: &str) -> ConfigProblem {
    match message.strip_prefix("unknown field `") {
        Some(rest) => {
            // serde: "unknown field `x`, expected one of `a`, `b`" or "…, there are no fields".
            let expected = rest
                .split_once("`, ")
                .map(|(_, tail)| format!(" ({tail})"))
                .unwrap_or_default();
            ConfigProblem::UnknownKey { key, expected }
        }
        None => ConfigProblem::WrongType {
            key,
            message: message.to_owned(),
        },
    }
}

/// `listeners[1].address`-style rendering; the top level is named explicitly.
fn display_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    if out.is_empty() {
        out.push_str("(top level)");
    }
    out
}

/// Removes the value at `segments` and returns the removed path.
///
/// An error inside an array element (e.g. `tls.crl_files[1]`) removes the whole array: removing
/// only the element would shift the indices of the errors reported after it.
fn remove(document: &mut toml::Value, segments: &[Segment]) -> Option<String> {
    let mut end = segments.len();
    while end > 0 && matches!(segments[end - 1], Segment::Seq { .. }) {
        end -= 1;
    }
    let (last, parents) = segments[..end].split_last()?;
    let Segment::Map { key } = last else {
        return None;
    };
    let mut current = document;
    for segment in parents {
        current = match segment {
            Segment::Map { key } => current.as_table_mut()?.get_mut(key)?,
            Segment::Seq { index } => current.as_array_mut()?.get_mut(*index)?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    current.as_table_mut()?.remove(key)?;
    Some(display_path(&segments[..end]))
}
