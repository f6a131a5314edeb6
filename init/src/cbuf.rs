//! Fixed-capacity C strings built on the stack (paths like `/proc/123/stat`, PATH candidates).
//! Pure logic; no kernel interface. rinit has no allocator, so paths are assembled here.

use core::ffi::CStr;

/// A NUL-terminated byte string of at most `N - 1` bytes.
pub struct CBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

/// The string would not fit, or would contain a NUL byte.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

impl<const N: usize> CBuf<N> {
    pub fn new() -> CBuf<N> {
        CBuf {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends `bytes`; on failure the buffer is left as it was.
    pub fn push(&mut self, bytes: &[u8]) -> Result<&mut Self, TooLong> {
        let end = self.len + bytes.len();
        if end >= N || bytes.contains(&0) {
            return Err(TooLong);
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.buf[end] = 0;
        self.len = end;
        Ok(self)
    }

    /// Appends a decimal number.
    pub fn push_num(&mut self, value: i64) -> Result<&mut Self, TooLong> {
        let mut digits = [0u8; 20];
        let text = crate::msg::decimal(value, &mut digits);
        self.push(text)
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_cstr(&self) -> &CStr {
        // push() keeps buf[len] == 0 and no NUL before it, so this cannot fail; fall back to ""
        // rather than panic.
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

impl<const N: usize> Default for CBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_paths() {
        let mut p = CBuf::<32>::new();
        p.push(b"/proc/")
            .unwrap()
            .push_num(4321)
            .unwrap()
            .push(b"/stat")
            .unwrap();
        assert_eq!(p.as_cstr(), c"/proc/4321/stat");
        p.clear();
        assert_eq!(p.as_cstr(), c"");
    }

    #[test]
    fn refuses_overflow_and_nul() {
        let mut p = CBuf::<8>::new();
        p.push(b"1234567").unwrap();
        assert_eq!(p.push(b"8").err(), Some(TooLong));
        assert_eq!(p.as_bytes(), b"1234567");
        let mut q = CBuf::<8>::new();
        assert_eq!(q.push(b"a\0b").err(), Some(TooLong));
        assert_eq!(q.as_cstr(), c"");
    }
}
