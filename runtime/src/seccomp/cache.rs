//! The compiled-filter cache: `<store>/seccomp/<sha256 hex>.bpf`, one file per digest of
//! everything a compilation reads (the profile's text, the container's capabilities, the
//! kernel's version for `minKernel`, libseccomp's version), so a start with a profile seen
//! before skips libseccomp. Files are written whole to a temporary name then renamed
//! (rename(2)), so a reader sees a complete program or none; one that fails the shape check is
//! ignored and compiled again. The folder belongs to the store's owner, like the rest of it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Program;

/// The digest naming the program compiled from `json` for a container holding `caps`.
pub fn key(json: &str, caps: u64) -> String {
    let mut h = Sha256::new();
    h.update(b"rrun seccomp cache v2 (binary tree)\0");
    h.update(json.as_bytes());
    h.update(caps.to_le_bytes());
    let (maj, min) = super::profile::kernel_version();
    h.update(format!("\0kernel {maj}.{min}").as_bytes());
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        h.update(format!("\0libseccomp {}.{}.{}", v.major, v.minor, v.micro).as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.bpf"))
}

/// The cached program for `key`, if a well-formed one is there.
pub fn load(dir: &Path, key: &str) -> Option<Program> {
    Program::new(fs::read(path(dir, key)).ok()?)
}

/// Stores a program; failures (a read-only store, a full disk) only cost the next start a
/// compilation, so they are ignored.
pub fn store(dir: &Path, key: &str, prog: &Program) {
    let _ = (|| -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&prog.0)?;
        drop(f);
        fs::rename(&tmp, path(dir, key)).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    })();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_program_loads_and_a_damaged_one_does_not() {
        let dir = std::env::temp_dir().join(format!("rrun-seccomp-cache-{}", std::process::id()));
        let k = key("{}", 1);
        assert_ne!(k, key("{}", 3));
        assert_eq!(k.len(), 64);
        let p = Program::new(vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap();
        store(&dir, &k, &p);
        assert_eq!(load(&dir, &k), Some(p));
        fs::write(path(&dir, &k), [1, 2, 3]).unwrap();
        assert_eq!(load(&dir, &k), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
