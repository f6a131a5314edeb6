//! The checksums a user gives `layer add` (`--sha256`, `--sha512`): validation and
//! normalisation. No kernel interface (pure functions over strings).

use store::digest::is_hex;

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
    fn checksums_take_a_prefix_and_any_case() {
        let h = "a".repeat(64);
        assert_eq!(
            parse_checksum(&format!("sha256:{}", "A".repeat(64)), "sha256", 64),
            Some(h.clone())
        );
        assert_eq!(parse_checksum(&format!(" {h} "), "sha256", 64), Some(h));
        assert_eq!(parse_checksum("abc", "sha256", 64), None);
        assert_eq!(parse_checksum(&"g".repeat(64), "sha256", 64), None);
    }
}
