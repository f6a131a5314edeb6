//! Writes a recipe layer's [`Plan`] as a tar stream: ustar headers in the plan's order, PAX
//! `path`/`linkpath` records for names over 100 bytes, mtime 0, no user or group names, no
//! xattrs. The same plan gives the same bytes, so the same DiffID (see layer.rs for what a plan
//! holds). Kernel interfaces: open(2) with O_NOFOLLOW of each file's source, fstat(2), read(2).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;

use tar::{EntryType, Header};

use super::layer::{Entry, From, Kind, Plan};

/// Writes `plan` to `out` and the two zero blocks that end a tar. Errors name the source that
/// could not be read, or that changed since the plan was made.
pub fn write(plan: &Plan, out: &mut dyn Write) -> Result<(), String> {
    for (path, e) in plan {
        let name = match e.kind {
            Kind::Dir => format!("{}/", path.0),
            _ => path.0.clone(),
        };
        entry(out, name.as_bytes(), e).map_err(|err| format!("{}: {err}", path.show()))?;
    }
    out.write_all(&[0u8; 1024]).map_err(|e| e.to_string())
}

fn entry(out: &mut dyn Write, name: &[u8], e: &Entry) -> io::Result<()> {
    let mut h = Header::new_ustar();
    h.set_mode(e.mode);
    h.set_uid(u64::from(e.owner.uid));
    h.set_gid(u64::from(e.owner.gid));
    h.set_mtime(0);
    h.set_size(0);
    let mut pax: Vec<(&[u8], &[u8])> = Vec::new();
    if name.len() > 100 {
        pax.push((b"path", name));
    }
    let link = match &e.kind {
        Kind::Dir => {
            h.set_entry_type(EntryType::Directory);
            None
        }
        Kind::Symlink(t) => {
            h.set_entry_type(EntryType::Symlink);
            if t.len() > 100 {
                pax.push((b"linkpath", t));
            }
            Some(t.as_slice())
        }
        Kind::File { size, .. } => {
            h.set_entry_type(EntryType::Regular);
            h.set_size(*size);
            None
        }
    };
    if !pax.is_empty() {
        write_pax(out, &pax)?;
    }
    set_field(&mut h.as_old_mut().name, name);
    if let Some(l) = link {
        set_field(&mut h.as_old_mut().linkname, l);
    }
    h.set_cksum();
    out.write_all(h.as_bytes())?;
    if let Kind::File { from, size } = &e.kind {
        copy_exactly(out, from, *size)?;
        pad(out, *size)?;
    }
    Ok(())
}

/// Copies the `size` bytes of a file's content; a source whose size is not `size` (it changed
/// since it was listed) is refused.
fn copy_exactly(out: &mut dyn Write, from: &From, size: u64) -> io::Result<()> {
    match from {
        From::Text(t) => out.write_all(t),
        From::Path(p) => {
            // listed without following a last symlink (a `file` source's was resolved then):
            // one swapped in meanwhile is refused (ELOOP), never followed
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            let n = io::copy(&mut (&f).take(size), out)?;
            let now = f.metadata()?.len();
            if n != size || now != size || !f.metadata()?.is_file() {
                return Err(io::Error::other(format!(
                    "{} changed while the layer was written ({size} bytes, then {now}); build again",
                    p.display()
                )));
            }
            Ok(())
        }
    }
}

fn write_pax(out: &mut dyn Write, records: &[(&[u8], &[u8])]) -> io::Result<()> {
    let mut body = Vec::new();
    for (k, v) in records {
        // "LEN key=value\n", where LEN counts its own digits
        let base = k.len() + v.len() + 3;
        let mut len = base + 1;
        while base + len.to_string().len() != len {
            len = base + len.to_string().len();
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(k);
        body.push(b'=');
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::XHeader);
    set_field(&mut h.as_old_mut().name, b"././@PaxHeader");
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(body.len() as u64);
    h.set_cksum();
    out.write_all(h.as_bytes())?;
    out.write_all(&body)?;
    pad(out, body.len() as u64)
}

fn pad(out: &mut dyn Write, size: u64) -> io::Result<()> {
    let r = (size % 512) as usize;
    if r != 0 {
        out.write_all(&[0u8; 512][..512 - r])?;
    }
    Ok(())
}

/// Copies bytes into a fixed header field (cut at its length: a PAX record then holds them).
fn set_field(field: &mut [u8], v: &[u8]) {
    field.fill(0);
    let n = v.len().min(field.len());
    field[..n].copy_from_slice(&v[..n]);
}

#[cfg(test)]
mod tests {
    use super::super::layer::Entry;
    use super::super::spec::{ImagePath, Owner};
    use super::*;

    #[test]
    fn a_plan_gives_a_tar_that_reads_back_with_its_attributes() {
        let mut plan = Plan::new();
        let long = format!("d/{}", "n".repeat(150));
        let e = |kind, mode| Entry {
            kind,
            mode,
            owner: Owner { uid: 7, gid: 8 },
            implicit: false,
        };
        plan.insert(ImagePath("d".into()), e(Kind::Dir, 0o755));
        plan.insert(
            ImagePath("d/f".into()),
            e(
                Kind::File {
                    from: From::Text(b"hello".to_vec()),
                    size: 5,
                },
                0o640,
            ),
        );
        plan.insert(
            ImagePath(long.clone()),
            e(Kind::Symlink(b"../x".repeat(40)), 0o777),
        );
        let mut out = Vec::new();
        write(&plan, &mut out).unwrap();
        let mut again = Vec::new();
        write(&plan, &mut again).unwrap();
        assert_eq!(out, again, "the same plan gives the same bytes");
        let mut ar = tar::Archive::new(out.as_slice());
        let mut seen = Vec::new();
        for m in ar.entries().unwrap() {
            let mut m = m.unwrap();
            let h = m.header().clone();
            let path = m.path().unwrap().to_string_lossy().into_owned();
            let link = m
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut body = String::new();
            m.read_to_string(&mut body).unwrap();
            assert_eq!(
                (h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap()),
                (7, 8, 0)
            );
            seen.push((path, h.mode().unwrap(), link, body));
        }
        assert_eq!(
            seen,
            [
                ("d/".to_string(), 0o755, None, String::new()),
                ("d/f".into(), 0o640, None, "hello".into()),
                (long, 0o777, Some("../x".repeat(40)), String::new()),
            ]
        );
    }
}
