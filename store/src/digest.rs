//! Digests as the store spells them: lowercase hex, and `sha256:<64 hex>` ids (DiffIDs,
//! ImageIDs). No kernel interface (pure functions over bytes).

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

/// True when `s` is a full id's hex part: 64 lowercase hex digits.
pub fn is_id_hex(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

pub struct Digest;

impl Digest {
    /// `sha256:<64 lowercase hex>` -> the hex part.
    pub fn parse_sha256(s: &str) -> Option<String> {
        let h = s.strip_prefix("sha256:")?;
        is_id_hex(h).then(|| h.to_string())
    }
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
        assert!(is_id_hex(&h));
        assert!(!is_id_hex(&h[1..]));
        assert_eq!(
            Digest::parse_sha256(&format!("sha256:{h}")),
            Some(h.clone())
        );
        assert_eq!(Digest::parse_sha256(&h), None);
        assert_eq!(Digest::parse_sha256("sha256:../../etc"), None);
    }
}
