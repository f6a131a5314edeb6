//! The error type of the rrun library: what failed, on which object, and the kernel's answer.
//! No kernel interface of its own; every variant names the path or object involved.

use std::io;

/// Everything the rrun library can fail with. Display is one lowercase line without a trailing
/// period, suitable for `rrun: <error>`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed; `what` names the call and the object.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Something the user asked for is wrong; the message names the object and the fix.
    #[error("{0}")]
    User(String),
    /// No container with this name or id.
    #[error("no such container: {0} (see `rrun ps -a`)")]
    NoSuchContainer(String),
    /// The image store could not resolve or read an image.
    #[error("{0}")]
    Image(String),
    /// The container's init process reported a failure during setup.
    #[error("container setup failed: {0}")]
    Child(String),
    /// The cgroup module failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// A state file parsed but was refused (see `State::validate`).
    #[error("{}: {why}", path.display())]
    BadState {
        path: std::path::PathBuf,
        why: String,
    },
    /// State files could not be parsed.
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed step of a process about to exec, named by a static string: making it allocates
/// nothing, so a process that shares rrun's memory (sys::spawn) can report it without
/// touching rrun's heap. Becomes [`Error::Sys`] where it meets the rest of rrun.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct StepError {
    pub what: &'static str,
    #[source]
    pub source: io::Error,
}

impl From<StepError> for Error {
    fn from(e: StepError) -> Error {
        Error::Sys {
            what: e.what.to_string(),
            source: e.source,
        }
    }
}

/// Names the step of an `io::Result` with a static string (see [`StepError`]).
pub trait Step<T> {
    fn step(self, what: &'static str) -> std::result::Result<T, StepError>;
}

impl<T, E: Into<io::Error>> Step<T> for std::result::Result<T, E> {
    fn step(self, what: &'static str) -> std::result::Result<T, StepError> {
        self.map_err(|e| StepError {
            what,
            source: e.into(),
        })
    }
}

/// Adds "what failed, on which object" to an `io::Result`.
pub trait Context<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|source| Error::Sys {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::Sys {
            what: what(),
            source: e.into(),
        })
    }
}

/// `text` with its control characters escaped as rinit escapes them (`\n`, `\r`, `\t`,
/// `\x1b`; `\u{85}` past ASCII), so that a message naming something from outside (a name, a
/// path, a command) prints as one line and cannot drive the terminal. Text without any comes
/// back as it is.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.extend(c.escape_debug()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Shorthand for a user error.
pub fn user(msg: impl Into<String>) -> Error {
    Error::User(msg.into())
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn control_characters_are_escaped_as_rinit_does() {
        assert_eq!(one_line("plain é"), "plain é");
        assert_eq!(
            one_line("a\nb\tc\r\u{1b}[31m\u{7f}\u{85}"),
            "a\\nb\\tc\\r\\x1b[31m\\x7f\\u{85}"
        );
    }
}
