//! rrun's results on stdout (what scripts read, one per line) and what a closed stdout means:
//! a reader that went away (EPIPE, e.g. `rrun logs -f c | head -c 10`) ends rrun quietly with
//! 141, as a tool killed by SIGPIPE would, which rbuild does too. rrun keeps SIGPIPE ignored
//! (Rust's default), so writes see EPIPE. Kernel interface: write(2), pipe(7).

use std::io::Write;

use crate::error::{Error, Result};

/// The exit status for a closed stdout: 128 + SIGPIPE, what a shell reports for such a tool.
pub const BROKEN_PIPE: i32 = 141;

/// What an error writing stdout is called (see [`is_closed_stdout`]).
const WHAT: &str = "write to stdout";

/// Writes `bytes` to stdout in full.
pub fn write(bytes: &[u8]) -> Result<()> {
    crate::tty::write_all(rustix::stdio::stdout(), bytes).map_err(stdout_error)
}

/// Writes one line (a name, an id) to stdout.
pub fn line(s: &str) -> Result<()> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(b'\n');
    write(&v)
}

/// An error writing stdout, recognised by [`is_closed_stdout`] when it is EPIPE.
pub fn stdout_error(source: std::io::Error) -> Error {
    Error::Sys {
        what: WHAT.into(),
        source,
    }
}

/// True when `e` says stdout's reader went away.
pub fn is_closed_stdout(e: &Error) -> bool {
    matches!(e, Error::Sys { what, source } if what == WHAT && source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Flushes std's stdout buffer (for code that used `print!`); errors as [`write`].
pub fn flush() -> Result<()> {
    std::io::stdout().flush().map_err(stdout_error)
}
