//! Owns: the devices a container may use (Docker's default allowlist) and applying it to its
//! cgroup: a BPF_PROG_TYPE_CGROUP_DEVICE program on cgroup v2, devices.deny/allow on v1.
//! Kernel interface: bpf(2) (include/uapi/linux/bpf.h struct bpf_cgroup_dev_ctx, see bpf.rs) and
//! devices.deny / devices.allow (Documentation/admin-guide/cgroup-v1/devices.rst).
//!
//! The allowlist is runc's `specconv.AllowedDevices` (v1.2.4 and later), which Docker applies to
//! every container it does not run `--privileged`: mknod of any character or block device (the
//! node is useless without read/write), and read/write/mknod of
//! c 1:3 null, 1:5 zero, 1:7 full, 1:8 random, 1:9 urandom, 5:0 tty, 5:2 ptmx, 136:* pts, and
//! 10:200 tun (removed in runc 1.2.0, restored in 1.2.4 because users relied on it; in a
//! container with its own network namespace it only makes interfaces there). Not 5:1: the host's
//! /dev/console is the host's system console; rrun never binds it and runc's list lacks it too.
//! Opening anything else, the device nodes an image carries included, gives EPERM.
//!
//! The kernel checks a device when it is opened or made (devcgroup_inode_permission,
//! devcgroup_inode_mknod): both the v2 program of the task's cgroup (and its ancestors) and the
//! v1 devices cgroup, if any, must allow it. A descriptor opened before, such as stdio rrun
//! hands in, keeps working; reopening it through /proc/self/fd is a new open and is checked.
//! A container cannot widen the list: attaching or detaching programs and writing devices.allow
//! need capabilities in the initial user namespace, and v1 children never exceed their parent.
//!
//! Rootless containers get no device control and need none: every mount they make (the overlay
//! root, /dev's tmpfs) is created inside their user namespace, and the kernel marks such
//! superblocks SB_I_NODEV, so opening any device node on them fails with EACCES
//! (may_open_dev; tests/tests/rrun_devices.rs checks it). Host nodes reaching a rootless
//! container through bind mounts (/dev/null and co., volumes) keep exactly the rights the user
//! has on the host anyway.

use std::path::Path;

use super::bpf::{self, Insn};
use super::{fs, CgroupError};

/// The access bits, as the kernel numbers them in devices.allow and in bpf_cgroup_dev_ctx
/// (BPF_DEVCG_ACC_MKNOD, _READ, _WRITE).
pub const MKNOD: u32 = 1;
pub const READ: u32 = 2;
pub const WRITE: u32 = 4;
const RWM: u32 = MKNOD | READ | WRITE;

/// BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Block = 1,
    Char = 2,
}

/// One allow rule: a device type, a major and minor number (None: any), the access allowed.
/// Numbers fit the kernel's dev_t (major < 2^12, minor < 2^20), so the program's 32-bit
/// immediates hold them unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

const fn rwm(major: u32, minor: Option<u32>) -> Rule {
    Rule {
        kind: Kind::Char,
        major: Some(major),
        minor,
        access: RWM,
    }
}

/// Docker's default allowlist (see the module comment).
pub const DEFAULT: [Rule; 11] = [
    Rule {
        kind: Kind::Char,
        major: None,
        minor: None,
        access: MKNOD,
    },
    Rule {
        kind: Kind::Block,
        major: None,
        minor: None,
        access: MKNOD,
    },
    rwm(1, Some(3)),    // null
    rwm(1, Some(5)),    // zero
    rwm(1, Some(7)),    // full
    rwm(1, Some(8)),    // random
    rwm(1, Some(9)),    // urandom
    rwm(5, Some(0)),    // tty
    rwm(5, Some(2)),    // ptmx
    rwm(136, None),     // pts
    rwm(10, Some(200)), // tun
];

impl Rule {
    /// The rule as devices.allow takes it: "c 1:3 rwm", "b *:* m".
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let kind = match self.kind {
            Kind::Block => 'b',
            Kind::Char => 'c',
        };
        let mut acc = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{kind} {}:{} {acc}", n(self.major), n(self.minor))
    }

    /// Whether the rule allows `access` (a combination of bits) to device `kind` major:minor.
    #[cfg(test)]
    pub fn allows(&self, kind: Kind, major: u32, minor: u32, access: u32) -> bool {
        self.kind == kind
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
            && access & !self.access == 0
    }
}

/// Whether any of `rules` allows the access (the reference the BPF program must agree with).
#[cfg(test)]
pub fn allowed(rules: &[Rule], kind: Kind, major: u32, minor: u32, access: u32) -> bool {
    rules.iter().any(|r| r.allows(kind, major, minor, access))
}

// Registers: r1 the context on entry; the fields unpacked from it; a scratch register.
const CTX: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;
const SCRATCH: u8 = 6;

/// Where a jump goes: resolved once the place is known.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Allow,
    Deny,
    NextGroup,
    NextMajor,
}

/// A device program allowing exactly `rules`. bpf_cgroup_dev_ctx is three u32s: access_type
/// ((access << 16) | type), major, minor; the program unpacks them into registers, refuses
/// access bits it does not know, then walks a small decision tree: rules grouped by (type,
/// access), then by major, with one compare per minor. A match jumps to "return 1" (allow), the
/// end to "return 0" (the kernel answers EPERM).
///
/// Load time matters (every container start loads one): the verifier walks every path and the
/// JIT every instruction, about 2 us per instruction here, so the tree (36 instructions for the
/// default list) beats one block of tests per rule (135).
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut a = Asm::default();
    a.p.extend([
        bpf::load_u32(TYPE, CTX, 0),
        bpf::mov32_reg(ACCESS, TYPE),
        bpf::rsh32_imm(ACCESS, 16),
        bpf::and32_imm(TYPE, 0xffff),
        bpf::load_u32(MAJOR, CTX, 4),
        bpf::load_u32(MINOR, CTX, 8),
    ]);
    // Access bits beyond r, w and m (none today) are never allowed.
    a.subset_or(RWM, Target::Deny);
    let mut groups: Vec<(Kind, u32)> = Vec::new();
    for r in rules {
        if !groups.contains(&(r.kind, r.access & RWM)) {
            groups.push((r.kind, r.access & RWM));
        }
    }
    for (kind, access) in groups {
        let group: Vec<&Rule> = rules
            .iter()
            .filter(|r| (r.kind, r.access & RWM) == (kind, access))
            .collect();
        a.jump(bpf::jne_imm(TYPE, kind as i32, 0), Target::NextGroup);
        if access != RWM {
            a.subset_or(access, Target::NextGroup);
        }
        let mut majors: Vec<Option<u32>> = Vec::new();
        for r in &group {
            if !majors.contains(&r.major) {
                majors.push(r.major);
            }
        }
        for major in majors {
            let minors: Vec<Option<u32>> = group
                .iter()
                .filter(|r| r.major == major)
                .map(|r| r.minor)
                .collect();
            match (major, minors.contains(&None)) {
                (None, true) => {
                    // Any device of this type and access: the rest of the group is moot (and
                    // the verifier refuses code no path reaches).
                    a.jump(bpf::ja(0), Target::Allow);
                    break;
                }
                (Some(m), true) => a.jump(bpf::jeq_imm(MAJOR, m as i32, 0), Target::Allow),
                (m, false) => {
                    if let Some(m) = m {
                        a.jump(bpf::jne_imm(MAJOR, m as i32, 0), Target::NextMajor);
                    }
                    for n in minors.into_iter().flatten() {
                        a.jump(bpf::jeq_imm(MINOR, n as i32, 0), Target::Allow);
                    }
                }
            }
            a.resolve(Target::NextMajor);
        }
        a.resolve(Target::NextGroup);
    }
    a.resolve(Target::Deny);
    a.p.extend([bpf::mov32_imm(0, 0), bpf::exit()]);
    if a.jumps.iter().any(|&(_, t)| t == Target::Allow) {
        a.resolve(Target::Allow);
        a.p.extend([bpf::mov32_imm(0, 1), bpf::exit()]);
    }
    debug_assert!(a.jumps.is_empty());
    a.p
}

/// The program being built and its jumps still waiting for their target's place.
#[derive(Default)]
struct Asm {
    p: Vec<Insn>,
    jumps: Vec<(usize, Target)>,
}

impl Asm {
    fn jump(&mut self, i: Insn, t: Target) {
        self.jumps.push((self.p.len(), t));
        self.p.push(i);
    }

    /// Goes to `t` unless every requested access bit is among `allowed`:
    /// access & !allowed == 0.
    fn subset_or(&mut self, allowed: u32, t: Target) {
        self.p.push(bpf::mov32_reg(SCRATCH, ACCESS));
        self.p.push(bpf::and32_imm(SCRATCH, !allowed as i32));
        self.jump(bpf::jne_imm(SCRATCH, 0, 0), t);
    }

    /// Points the pending jumps to `t` at the next instruction to be emitted.
    fn resolve(&mut self, t: Target) {
        let here = self.p.len();
        let p = &mut self.p;
        self.jumps.retain(|&(at, target)| {
            if target != t {
                return true;
            }
            debug_assert!(bpf::is_jump(&p[at]));
            p[at].off = (here - at - 1) as i16;
            false
        });
    }
}

/// Loads the program for `rules` and attaches it to the cgroup v2 directory `dir`
/// (BPF_F_ALLOW_MULTI: programs an ancestor holds keep running too, and all must allow).
pub fn attach_program(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let prog = bpf::load_device_program(&program(rules), "rbox_devices").map_err(|e| {
        CgroupError::BpfLoad {
            source: e.source,
            verifier: e.verifier,
        }
    })?;
    let fail = |source| CgroupError::BpfAttach {
        path: dir.to_path_buf(),
        source,
    };
    let d = std::fs::File::open(dir).map_err(fail)?;
    bpf::attach_device_program(&d, &prog, bpf::BPF_F_ALLOW_MULTI).map_err(fail)
}

/// Sets the v1 devices cgroup `dir` (new, without children) to deny everything but `rules`.
/// A rule the parent cgroup does not allow is refused by the kernel (EPERM) and skipped: the
/// parent's stricter list then holds for the container anyway.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    fs::write(dir, "devices.deny", "a")?;
    for r in rules {
        match fs::write(dir, "devices.allow", &r.v1_line()) {
            Ok(()) => {}
            Err(CgroupError::Write { source, data, .. })
                if source.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) =>
            {
                tracing::debug!(rule = %data, "the parent devices cgroup does not allow this rule: skipped")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
pub mod unit {
    use super::*;

    #[test]
    fn v1_lines_are_in_the_devices_allow_format() {
        let lines: Vec<String> = DEFAULT.iter().map(Rule::v1_line).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
                "c 10:200 rwm"
            ]
        );
    }

    /// Runs the generated program on one access and returns its verdict.
    fn verdict(p: &[Insn], kind: Kind, major: u32, minor: u32, access: u32) -> bool {
        let ctx = [(access << 16) | kind as u32, major, minor];
        match bpf::interpret(p, &ctx).expect("program runs") {
            0 => false,
            1 => true,
            v => panic!("program returned {v}"),
        }
    }

    #[test]
    fn the_program_allows_exactly_the_default_rules() {
        let p = program(&DEFAULT);
        let majors = [0, 1, 4, 5, 7, 10, 136, 137, 189, 4095];
        let minors = [0, 1, 2, 3, 5, 7, 8, 9, 11, 200, 255, 1 << 19];
        let mut allowed_count = 0;
        for kind in [Kind::Char, Kind::Block] {
            for &major in &majors {
                for &minor in &minors {
                    for access in 1..=7 {
                        let want = allowed(&DEFAULT, kind, major, minor, access);
                        allowed_count += want as u32;
                        assert_eq!(
                            verdict(&p, kind, major, minor, access),
                            want,
                            "{kind:?} {major}:{minor} access {access}"
                        );
                    }
                }
            }
        }
        assert!(allowed_count > 0);
    }

    #[test]
    fn the_default_rules_deny_image_devices_and_allow_the_standard_ones() {
        let p = program(&DEFAULT);
        for (kind, major, minor) in [
            (Kind::Char, 1, 11),   // kmsg
            (Kind::Block, 7, 0),   // loop0
            (Kind::Char, 10, 232), // kvm
            (Kind::Char, 1, 1),    // mem
            (Kind::Char, 5, 1),    // the host console
            (Kind::Block, 8, 0),   // sda
        ] {
            for access in [READ, WRITE, READ | WRITE] {
                assert!(!verdict(&p, kind, major, minor, access), "{major}:{minor}");
            }
            assert!(
                verdict(&p, kind, major, minor, MKNOD),
                "mknod {major}:{minor}"
            );
        }
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 2),
            (136, 0),
            (136, 77),
            (10, 200),
        ] {
            assert!(
                verdict(&p, Kind::Char, major, minor, READ | WRITE),
                "{major}:{minor}"
            );
            assert!(
                !verdict(&p, Kind::Block, major, minor, READ),
                "block {major}:{minor}"
            );
        }
        // Unknown access bits are never allowed.
        assert!(!verdict(&p, Kind::Char, 1, 3, 8));
    }

    /// Rule sets of unusual shapes: wildcards in either place, every access combination,
    /// repeated groups, a rule that makes the rest of its group moot, none at all.
    pub fn odd_rule_sets() -> Vec<Vec<Rule>> {
        let r = |kind, major, minor, access| Rule {
            kind,
            major,
            minor,
            access,
        };
        vec![
            vec![],
            vec![
                r(Kind::Block, Some(8), None, READ),
                r(Kind::Char, None, Some(3), WRITE),
            ],
            vec![
                r(Kind::Char, Some(1), Some(3), READ),
                r(Kind::Block, Some(7), Some(0), RWM),
                r(Kind::Char, Some(1), Some(5), READ | MKNOD),
                r(Kind::Char, Some(1), Some(7), READ),
                r(Kind::Char, Some(1), None, READ),
            ],
            vec![r(Kind::Char, None, None, RWM)],
            vec![r(Kind::Char, Some(4), Some(1), 0)],
            vec![
                r(Kind::Char, None, None, READ),
                r(Kind::Char, Some(1), Some(3), READ),
            ],
            DEFAULT.to_vec(),
        ]
    }

    #[test]
    fn any_rule_set_compiles_to_a_program_that_agrees_with_its_rules() {
        for rules in odd_rule_sets() {
            let p = program(&rules);
            for kind in [Kind::Char, Kind::Block] {
                for major in [0, 1, 4, 7, 8, 9] {
                    for minor in [0, 1, 3, 5, 7, 9] {
                        for access in 0..=8 {
                            assert_eq!(
                                verdict(&p, kind, major, minor, access),
                                allowed(&rules, kind, major, minor, access),
                                "{rules:?}: {kind:?} {major}:{minor} access {access}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_default_program_stays_small() {
        // Each instruction costs about 2 us of verifier and JIT time at every container start.
        assert!(program(&DEFAULT).len() <= 40, "{}", program(&DEFAULT).len());
    }

    #[test]
    fn without_rules_the_program_denies_everything() {
        let p = program(&[]);
        assert_eq!(p.len(), 11);
        assert!(!verdict(&p, Kind::Char, 1, 3, READ));
    }
}
