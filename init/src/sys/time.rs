//! Time: the monotonic clock, and the timespec the kernel takes for timeouts.
//! Kernel interface: clock_gettime(2) (CLOCK_MONOTONIC), by the real syscall (no vDSO).

use super::{check, nr, syscall};

const CLOCK_MONOTONIC: usize = 1;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    pub fn from_millis(ms: u64) -> Timespec {
        Timespec {
            sec: (ms / 1000) as i64,
            nsec: ((ms % 1000) * 1_000_000) as i64,
        }
    }
    pub fn as_millis(self) -> u64 {
        (self.sec.max(0) as u64) * 1000 + (self.nsec.max(0) as u64) / 1_000_000
    }
}

/// clock_gettime(2) of CLOCK_MONOTONIC, by the real syscall (no vDSO without a libc).
pub fn monotonic_now() -> Timespec {
    let mut ts = Timespec::default();
    // SAFETY: ts is a writable timespec.
    let _ = check(unsafe {
        syscall(
            nr::CLOCK_GETTIME,
            [
                CLOCK_MONOTONIC,
                &mut ts as *mut Timespec as usize,
                0,
                0,
                0,
                0,
            ],
        )
    });
    ts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespec_converts_milliseconds() {
        let t = Timespec::from_millis(2_345);
        assert_eq!((t.sec, t.nsec), (2, 345_000_000));
        assert_eq!(t.as_millis(), 2_345);
    }
}
