//! Owns: turning the CLI's limit strings (sizes, cpu fractions, cpu lists) into checked values.
//! Kernel interface: the cpu list format of cpuset.cpus and /sys/devices/system/cpu/online
//! (Documentation/admin-guide/cputopology.rst, cgroup-v1/cpusets.rst).

use std::collections::BTreeSet;

use super::CgroupError;

/// Highest cpu number a list may name (the kernel's NR_CPUS is at most 8192).
const MAX_CPU: u32 = 8191;

/// "6m", "32m", "1g", "512k", "1.5g", "1048576": bytes. Units are powers of 1024 (k, m, g, t),
/// case-insensitive, optionally followed by "b" or "ib" ("32mb", "32MiB"); a bare number or a
/// "b" suffix is bytes. Refuses junk, 0 and values that do not fit in 64 bits.
pub fn parse_size(s: &str) -> Result<u64, CgroupError> {
    let bad = |reason: &str| CgroupError::InvalidSize {
        input: s.to_string(),
        reason: reason.to_string(),
    };
    let hint = "use a number with an optional k, m, g or t suffix, e.g. 32m";
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let shift = match unit.trim_start() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad(hint)),
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() || frac.contains('.') || (num.contains('.') && frac.is_empty()) {
        return Err(bad(hint));
    }
    let overflow = || bad("too large");
    let int: u64 = int.parse().map_err(|_| overflow())?;
    let mut bytes = int.checked_mul(1u64 << shift).ok_or_else(overflow)?;
    if !frac.is_empty() {
        if shift == 0 {
            return Err(bad("a byte count has no fraction"));
        }
        // frac digits * 2^shift / 10^len, exactly, in 128 bits (at most 19 digits are kept).
        let digits = &frac[..frac.len().min(19)];
        let f: u128 = digits.parse().map_err(|_| bad(hint))?;
        let part = (f << shift) / 10u128.pow(digits.len() as u32);
        bytes = bytes
            .checked_add(u64::try_from(part).map_err(|_| overflow())?)
            .ok_or_else(overflow)?;
    }
    if bytes == 0 {
        return Err(bad("must be more than 0"));
    }
    Ok(bytes)
}

/// "0.5", "2": a fraction of CPUs. Refuses junk, values <= 0, below 0.01 (the kernel's 1 ms
/// minimum quota per 100 ms period) and above the number of online CPUs.
pub fn parse_cpus(s: &str) -> Result<f64, CgroupError> {
    parse_cpus_with(s, online_cpus())
}

/// [`parse_cpus`] against a given number of online CPUs.
pub(super) fn parse_cpus_with(s: &str, online: usize) -> Result<f64, CgroupError> {
    let bad = |reason: String| CgroupError::InvalidCpus {
        input: s.to_string(),
        reason,
    };
    let t = s.trim();
    let well_formed = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        && t.matches('.').count() <= 1
        && t.chars().any(|c| c.is_ascii_digit());
    if !well_formed {
        return Err(bad("use a decimal number of CPUs, e.g. 0.5 or 2".into()));
    }
    let v: f64 = t
        .parse()
        .map_err(|_| bad("use a decimal number of CPUs, e.g. 0.5 or 2".into()))?;
    if v <= 0.0 {
        return Err(bad("must be more than 0".into()));
    }
    if v < 0.01 {
        return Err(bad("must be at least 0.01".into()));
    }
    if v > online as f64 {
        return Err(bad(format!("this machine has {online} online cpus")));
    }
    Ok(v)
}

/// Number of online CPUs from /sys/devices/system/cpu/online, else what std sees.
pub(super) fn online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| parse_cpu_list(t.trim()).ok())
        .map(|s| s.len())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// A cpu list as the kernel writes it ("0-3,8,10-11"; "" is the empty set).
pub(super) fn parse_cpu_list(s: &str) -> Result<BTreeSet<u32>, CgroupError> {
    let bad = |reason: &str| CgroupError::InvalidCpuset {
        input: s.to_string(),
        reason: reason.to_string(),
    };
    let hint = "use cpu numbers and ranges separated by commas, e.g. 0-1,3";
    let mut set = BTreeSet::new();
    let t = s.trim();
    if t.is_empty() {
        return Ok(set);
    }
    for item in t.split(',') {
        let num = |x: &str| -> Result<u32, CgroupError> {
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(hint));
            }
            match x.parse::<u32>() {
                Ok(n) if n <= MAX_CPU => Ok(n),
                _ => Err(bad("cpu numbers go up to 8191")),
            }
        };
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(item)?, num(item)?),
        };
        if lo > hi {
            return Err(bad("a range must go upwards, e.g. 0-3"));
        }
        set.extend(lo..=hi);
    }
    Ok(set)
}

/// A user's cpuset list: like [`parse_cpu_list`] but must name at least one cpu.
pub(super) fn parse_cpuset(s: &str) -> Result<BTreeSet<u32>, CgroupError> {
    let set = parse_cpu_list(s)?;
    if set.is_empty() {
        return Err(CgroupError::InvalidCpuset {
            input: s.to_string(),
            reason: "name at least one cpu, e.g. 0".into(),
        });
    }
    Ok(set)
}

/// The canonical kernel form of a cpu set: ascending, ranges folded ("0-2,5").
pub(super) fn format_cpu_list(set: &BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(lo) = it.next() {
        let mut hi = lo;
        while it.peek() == Some(&(hi + 1)) {
            hi += 1;
            it.next();
        }
        out.push(if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        });
    }
    out.join(",")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parse_size_reads_units_as_powers_of_1024() {
        assert_eq!(parse_size("6m").unwrap(), 6 << 20);
        assert_eq!(parse_size("32m").unwrap(), 32 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4096b").unwrap(), 4096);
        assert_eq!(parse_size("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_size("32MB").unwrap(), 32 << 20);
        assert_eq!(parse_size("2T").unwrap(), 2 << 40);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("0.5k").unwrap(), 512);
    }

    #[test]
    fn parse_size_refuses_junk_zero_and_overflow() {
        for junk in [
            "", "m", "abc", "12x", "-1", "1..5g", "1.g", ".5g", "1.5", "1 2m", "0x10", "1e6",
            "+5m", "5mm",
        ] {
            let e = parse_size(junk).expect_err(junk).to_string();
            assert!(e.starts_with("invalid size"), "{junk}: {e}");
        }
        assert!(parse_size("0")
            .unwrap_err()
            .to_string()
            .contains("more than 0"));
        assert!(parse_size("0m").is_err());
        assert!(parse_size("18446744073709551616")
            .unwrap_err()
            .to_string()
            .contains("too large"));
        assert!(parse_size("17179869184g")
            .unwrap_err()
            .to_string()
            .contains("too large"));
        assert!(parse_size("99999999999999999999999t").is_err());
    }

    #[test]
    fn parse_cpus_accepts_fractions_up_to_the_online_count() {
        assert_eq!(parse_cpus_with("0.5", 2).unwrap(), 0.5);
        assert_eq!(parse_cpus_with("2", 2).unwrap(), 2.0);
        assert_eq!(parse_cpus_with("1.25", 2).unwrap(), 1.25);
        assert_eq!(parse_cpus_with("0.01", 1).unwrap(), 0.01);
    }

    #[test]
    fn parse_cpus_refuses_junk_zero_negative_tiny_and_too_many() {
        for junk in [
            "", "abc", "-1", "1e1", "inf", "NaN", "0.5.5", ".", "1,5", " ",
        ] {
            assert!(parse_cpus_with(junk, 2).is_err(), "{junk}");
        }
        assert!(parse_cpus_with("0", 2)
            .unwrap_err()
            .to_string()
            .contains("more than 0"));
        assert!(parse_cpus_with("0.001", 2)
            .unwrap_err()
            .to_string()
            .contains("at least 0.01"));
        let e = parse_cpus_with("3", 2).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid cpus value \"3\": this machine has 2 online cpus"
        );
    }

    #[test]
    fn cpu_lists_parse_and_fold_back_canonically() {
        let s = parse_cpu_list("3,0-1,5-7,6").unwrap();
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec![0, 1, 3, 5, 6, 7]
        );
        assert_eq!(format_cpu_list(&s), "0-1,3,5-7");
        assert_eq!(format_cpu_list(&parse_cpu_list("0").unwrap()), "0");
        assert!(parse_cpu_list("").unwrap().is_empty());
        assert!(parse_cpu_list("0-1\n").is_ok());
    }

    #[test]
    fn cpusets_refuse_junk_backward_ranges_and_empty() {
        for junk in [
            "a", "1-", "-1", "1,,2", "3-1", "0-99999", "1 2", "0x1", "1-2-3",
        ] {
            assert!(parse_cpuset(junk).is_err(), "{junk}");
        }
        assert!(parse_cpuset("")
            .unwrap_err()
            .to_string()
            .contains("at least one cpu"));
    }
}
