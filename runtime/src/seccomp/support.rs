//! What a profile may ask of this build, as runtime-spec's features document reports it
//! (features.md, `linux.seccomp`): the actions and comparison operators [`super::profile`]
//! compiles, the architectures the linked libseccomp can put in a filter (seccomp_arch_add(3),
//! tried on a scratch filter), and the filter flags rrun knows and this kernel accepts
//! (seccomp(2), probed by [`crate::sys::seccomp::flag_supported`]).

use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext};

use super::profile::FLAGS;

/// The actions a profile may use (SCMP_ACT_NOTIFY is refused: no listener).
pub const ACTIONS: [&str; 8] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// The argument comparisons (seccomp_rule_add(3)).
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Every architecture name the libseccomp crate parses; [`arches`] keeps those the linked C
/// library knows.
const ARCH_NAMES: [&str; 24] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_NATIVE",
];

/// The architectures the linked libseccomp can add to a filter: each is tried alone in a
/// scratch filter emptied of the native one (a filter holds one byte order).
pub fn arches() -> Vec<&'static str> {
    let knows = |name: &str| -> bool {
        let Ok(arch) = name.parse::<ScmpArch>() else {
            return false;
        };
        if arch == ScmpArch::Native {
            return true;
        }
        let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else {
            return false;
        };
        ctx.remove_arch(ScmpArch::native()).is_ok() && ctx.add_arch(arch).is_ok()
    };
    ARCH_NAMES.into_iter().filter(|a| knows(a)).collect()
}

/// The filter flags a profile may name.
pub fn known_flags() -> Vec<&'static str> {
    FLAGS.iter().map(|(n, _)| *n).collect()
}

/// The filter flags this kernel accepts.
pub fn supported_flags() -> Vec<&'static str> {
    FLAGS
        .iter()
        .filter(|(_, bit)| crate::sys::seccomp::flag_supported(*bit))
        .map(|(n, _)| *n)
        .collect()
}

/// The linked libseccomp's version, `MAJOR.MINOR.MICRO`.
pub fn libseccomp_version() -> Option<String> {
    let v = libseccomp::ScmpVersion::current().ok()?;
    Some(format!("{}.{}.{}", v.major, v.minor, v.micro))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machines_arches_and_flags_are_there() {
        let a = arches();
        for want in [
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_AARCH64",
        ] {
            assert!(a.contains(&want), "{a:?}");
        }
        assert!(
            a.contains(&"SCMP_ARCH_S390X"),
            "other byte orders too: {a:?}"
        );
        // Linux 4.17 and later know all three.
        assert_eq!(supported_flags(), known_flags());
        for act in ACTIONS {
            let errno = (act == "SCMP_ACT_ERRNO" || act == "SCMP_ACT_TRACE").then_some(1);
            assert!(ScmpAction::from_str(act, errno).is_ok(), "{act}");
        }
        assert!(libseccomp_version().is_some_and(|v| v.starts_with('2')));
    }
}
