//! Digest helpers: hex encoding, `sha256:<hex>` parsing and checksum-argument validation.
//! No kernel interface (pure functions over bytes).

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// True when `s` is non-empty and only lowercase hex digits.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub struct Digest;

impl Digest {
    /// `sha256:<64 lowercase hex>` -> the hex part.
    pub fn parse_sha256(s: &str) -> Option<String> {
        let h = s.strip_prefix("sha256:")?;
        (h.len() == 64 && is_hex(h)).then(|| h.to_string())
    }
}

/// Normalises a user-given checksum (`HEX` or `ALGO:HEX`, any case) of `len` hex digits.
pub fn parse_checksum(s: &str, algo: &str, len: usize) -> Option<String> {
    let s = s.trim();
    let h = s
        .strip_prefix(&format!("{algo}:"))
        .unwrap_or(s)
        .to_ascii_lowercase();
    (h.len() == len && is_hex(&h)).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_checks() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert!(is_hex("00ab"));
        assert!(!is_hex("00AB"));
        assert!(!is_hex(""));
        let h = "a".repeat(64);
        assert_eq!(
            Digest::parse_sha256(&format!("sha256:{h}")),
            Some(h.clone())
        );
        assert_eq!(Digest::parse_sha256(&h), None);
        assert_eq!(
            parse_checksum(&format!("sha256:{}", "A".repeat(64)), "sha256", 64),
            Some(h)
        );
        assert_eq!(parse_checksum("abc", "sha256", 64), None);
    }
}
