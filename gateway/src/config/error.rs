//! Configuration problems, collected so that one run of `check-config` lists all of them.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One thing wrong with the configuration, tied to the key it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The configuration file itself could not be read.
    #[error("cannot read the configuration file: {source}")]
    Unreadable {
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The file is not valid TOML; nothing else can be checked.
    #[error("not valid TOML: {message}")]
    Syntax {
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A key that no section knows (often a typo).
    #[error("{key}: unknown key{expected}")]
    UnknownKey {
        /// Dotted path of the key, e.g. `listeners[1].adress`.
        key: String,
        /// The keys that would have been accepted, as a ready-made suffix (may be empty).
        expected: String,
    },
    /// A value of the wrong TOML type or an unknown enumeration value.
    #[error("{key}: {message}")]
    WrongType {
        /// Dotted path of the key.
        key: String,
        /// What the deserializer expected and found.
        message: String,
    },
    /// A key that has no default and was not given.
    #[error("{key}: missing (required)")]
    Missing {
        /// Dotted path of the key.
        key: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong, quoting the value.
        message: String,
    },
    /// A file named by the configuration does not exist or is not a regular file.
    #[error("{key}: file not found: {}", path.display())]
    MissingFile {
        /// Dotted path of the key.
        key: String,
        /// The path after resolution against the configuration file's directory.
        path: PathBuf,
    },
    /// A file exists but its content cannot be used (bad PEM, bad whitelist, …).
    #[error("{key}: {message}")]
    Unusable {
        /// Dotted path of the key whose file is at fault.
        key: String,
        /// The loader's error, with its causes.
        message: String,
    },
}

impl ConfigProblem {
    /// The dotted key path this problem concerns, if it concerns one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Unreadable { .. } | Self::Syntax { .. } => None,
            Self::UnknownKey { key, .. }
            | Self::WrongType { key, .. }
            | Self::Missing { key }
            | Self::Invalid { key, .. }
            | Self::MissingFile { key, .. }
            | Self::Unusable { key, .. } => Some(key),
        }
    }
}

/// Every problem found in one configuration file; never empty.
#[derive(Debug)]
pub struct ConfigErrors {
    file: PathBuf,
    problems: Vec<ConfigProblem>,
}

impl ConfigErrors {
    /// Wraps a non-empty list of problems found in `file`.
    pub(crate) fn new(file: PathBuf, problems: Vec<ConfigProblem>) -> Self {
        debug_assert!(!problems.is_empty(), "ConfigErrors without a problem");
        Self { file, problems }
    }

    /// The configuration file the problems were found in.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// The problems, in the order they were found.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let noun = if count == 1 { "error" } else { "errors" };
        write!(f, "{}: {count} configuration {noun}:", self.file.display())?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
