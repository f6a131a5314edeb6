//! One-line messages to stderr (`rinit: ...`), built without an allocator or `core::fmt`.
//! Drives write(2) on fd 2: each line goes out in one call, so lines never interleave.

use crate::sys::{self, Errno};

/// A message line under construction, in a fixed buffer. Text past the end is dropped.
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    /// A line starting with `rinit: `.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
        .s("rinit: ")
    }

    /// An empty line, without the `rinit: ` prefix.
    pub fn bare() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }

    /// Appends bytes.
    pub fn b(mut self, bytes: &[u8]) -> Line {
        for &c in bytes {
            if self.len == self.buf.len() {
                break;
            }
            self.buf[self.len] = c;
            self.len += 1;
        }
        self
    }

    /// Appends bytes from outside (a command's name, an argument, a path) with control
    /// characters escaped (`\n`, `\r`, `\t`, `\xNN`): the message stays one line, and a
    /// name cannot move the terminal's cursor or colour it.
    pub fn q(mut self, bytes: &[u8]) -> Line {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &c in bytes {
            self = match c {
                b'\n' => self.b(b"\\n"),
                b'\r' => self.b(b"\\r"),
                b'\t' => self.b(b"\\t"),
                0..=0x1f | 0x7f => self.b(&[
                    b'\\',
                    b'x',
                    HEX[usize::from(c >> 4)],
                    HEX[usize::from(c & 15)],
                ]),
                _ => self.b(&[c]),
            };
        }
        self
    }

    /// Appends text.
    pub fn s(self, text: &str) -> Line {
        self.b(text.as_bytes())
    }

    /// Appends a decimal number.
    pub fn n(self, value: i64) -> Line {
        let mut digits = [0u8; 20];
        let text = decimal(value, &mut digits);
        self.b(text)
    }

    /// Appends the text of an error number.
    pub fn e(self, errno: Errno) -> Line {
        self.s(errno.text())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Writes the line and a newline to `fd` (errors ignored: there is nobody left to tell).
    pub fn emit_to(self, fd: i32) {
        let line = self.b(b"\n");
        if sys::io::write_all(fd, line.as_bytes()) == Err(Errno::EPIPE) {
            // Our write raised SIGPIPE, which waits blocked: take it back, or the main loop
            // would forward it to the command as if someone had sent it.
            let no_wait = Some(sys::time::Timespec::default());
            let _ = sys::signal::sigtimedwait(
                sys::signal::SigSet::EMPTY.with(sys::signal::sig::SIGPIPE),
                no_wait,
            );
        }
    }

    /// Writes the line to stderr.
    pub fn emit(self) {
        self.emit_to(2)
    }
}

/// Formats `value` in decimal into `out`, returning the digits written.
pub fn decimal(value: i64, out: &mut [u8; 20]) -> &[u8] {
    let negative = value < 0;
    let mut v = value.unsigned_abs();
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 1 {
            break;
        }
    }
    if negative {
        i -= 1;
        out[i] = b'-';
    }
    &out[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_bytes_stay_on_one_line() {
        let l = Line::bare().q(b"a\nb\tc\x1b[31m\x7fd");
        assert_eq!(l.as_bytes(), b"a\\nb\\tc\\x1b[31m\\x7fd");
    }

    #[test]
    fn decimal_formats_edges() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(1, &mut b), b"1");
        assert_eq!(decimal(-143, &mut b), b"-143");
        assert_eq!(decimal(4_194_304, &mut b), b"4194304");
        assert_eq!(decimal(i64::MAX, &mut b), b"9223372036854775807");
        assert_eq!(decimal(i64::MIN, &mut b), b"-9223372036854775808");
    }

    #[test]
    fn line_builds_and_truncates() {
        let l = Line::new()
            .s("cannot mount ")
            .b(b"/proc")
            .s(": ")
            .e(Errno::EPERM);
        assert_eq!(
            l.as_bytes(),
            b"rinit: cannot mount /proc: operation not permitted"
        );
        let long = Line::bare().b(&[b'x'; 600]);
        assert_eq!(long.as_bytes().len(), 512);
    }
}
