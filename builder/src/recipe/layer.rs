//! A recipe layer's entries, normalised: what goes into its tar and with which attributes.
//! Owners are the recipe's (0:0 unless it says otherwise), modes the recipe's or 0755 for
//! folders and executable files and 0644 for other files, no xattrs, mtimes 0 (see
//! tarball.rs), hardlinks written as files: a checkout by another user, under another umask,
//! at another time, gives the same entries. Kernel interfaces: lstat(2), stat(2),
//! readlink(2) and getdents64(2) of the recipe's sources, through std::fs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::spec::{Content, ImagePath, Item, LayerSpec, Owner};

/// Folders deeper than this below a `dir` source are refused (a loop of bind mounts, or not a
/// repository's folder).
const MAX_DEPTH: usize = 128;

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// permission bits
    pub mode: u32,
    pub owner: Owner,
    /// a parent folder no item named (made 0755 0:0, as Docker's COPY does)
    pub implicit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// a regular file: its bytes come from `from` and must be `size` long when written
    File {
        from: From,
        size: u64,
    },
    Symlink(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    Path(PathBuf),
    Text(Vec<u8>),
}

/// A layer's entries by path in the image (sorted bytewise: a folder before what it holds).
pub type Plan = BTreeMap<ImagePath, Entry>;

/// Lists what `layer` puts in its tar, reading only the sources' metadata. Errors are one line
/// naming the source (missing, unreadable, a device, FIFO or socket) or the path in the image
/// that two items both give.
pub fn plan(layer: &LayerSpec) -> Result<Plan, String> {
    let mut p = Planner {
        plan: Plan::new(),
        given_by: BTreeMap::new(),
    };
    for item in &layer.items {
        match item {
            Item::Dir { src, dest, owner } => p.dir(src, dest, *owner)?,
            Item::File {
                content,
                dest,
                mode,
                owner,
            } => p.file(content, dest, *mode, *owner)?,
        }
    }
    Ok(p.plan)
}

struct Planner {
    plan: Plan,
    /// which source gave each explicit entry, for messages
    given_by: BTreeMap<ImagePath, PathBuf>,
}

/// 0755 when any execute bit is set, else 0644 (git keeps only this bit of a file's mode).
fn normal_file_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

impl Planner {
    fn dir(&mut self, src: &Path, dest: &ImagePath, owner: Owner) -> Result<(), String> {
        let m = fs::metadata(src).map_err(|e| format!("dir {}: {e}", src.display()))?;
        if !m.is_dir() {
            return Err(format!("dir {}: not a folder", src.display()));
        }
        if !dest.is_root() {
            self.put(dest, dir_entry(owner), src)?;
        }
        self.walk(src, dest, owner, 0)
    }

    fn walk(
        &mut self,
        src: &Path,
        dest: &ImagePath,
        owner: Owner,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "dir {}: more than {MAX_DEPTH} folders deep",
                src.display()
            ));
        }
        let read = |e: std::io::Error| format!("dir {}: {e}", src.display());
        let mut names = Vec::new();
        for e in fs::read_dir(src).map_err(read)? {
            names.push(e.map_err(read)?.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = src.join(&name);
            let Some(n) = name.to_str() else {
                return Err(format!("{}: the name is not UTF-8", path.display()));
            };
            let at = dest.join(n);
            let m = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let ft = m.file_type();
            if ft.is_dir() {
                self.put(&at, dir_entry(owner), &path)?;
                self.walk(&path, &at, owner, depth + 1)?;
            } else if ft.is_file() {
                let e = Entry {
                    kind: Kind::File {
                        from: From::Path(path.clone()),
                        size: m.len(),
                    },
                    mode: normal_file_mode(m.permissions().mode()),
                    owner,
                    implicit: false,
                };
                self.put(&at, e, &path)?;
            } else if ft.is_symlink() {
                let target =
                    fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let e = Entry {
                    kind: Kind::Symlink(target.as_os_str().as_bytes().to_vec()),
                    mode: 0o777,
                    owner,
                    implicit: false,
                };
                self.put(&at, e, &path)?;
            } else {
                return Err(format!(
                    "{}: a device, FIFO or socket cannot go in a recipe layer; remove it or leave it out of the folder",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    fn file(
        &mut self,
        content: &Content,
        dest: &ImagePath,
        mode: Option<u32>,
        owner: Owner,
    ) -> Result<(), String> {
        let (from, size, found_mode, src) = match content {
            Content::Text(t) => (
                From::Text(t.as_bytes().to_vec()),
                t.len() as u64,
                0o644,
                PathBuf::from("(text)"),
            ),
            Content::Src(p) => {
                // a symlink given as a file's source stands for the file it points at
                let m = fs::metadata(p).map_err(|e| format!("file {}: {e}", p.display()))?;
                if !m.is_file() {
                    return Err(format!("file {}: not a regular file", p.display()));
                }
                let real = fs::canonicalize(p).map_err(|e| format!("file {}: {e}", p.display()))?;
                (
                    From::Path(real),
                    m.len(),
                    normal_file_mode(m.permissions().mode()),
                    p.clone(),
                )
            }
        };
        let e = Entry {
            kind: Kind::File { from, size },
            mode: mode.unwrap_or(found_mode),
            owner,
            implicit: false,
        };
        self.put(dest, e, &src)
    }

    /// Adds `e` at `at` after its missing parents. Two folders at one path merge when they
    /// agree; anything else given twice is refused.
    fn put(&mut self, at: &ImagePath, e: Entry, src: &Path) -> Result<(), String> {
        self.parents(at, src)?;
        match self.plan.get(at) {
            None => {}
            Some(old) if old.implicit && e.kind == Kind::Dir => {}
            Some(old)
                if old.kind == Kind::Dir
                    && e.kind == Kind::Dir
                    && old.mode == e.mode
                    && old.owner == e.owner =>
            {
                return Ok(());
            }
            Some(_) => {
                let first = self
                    .given_by
                    .get(at)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "a folder made for another entry".into());
                return Err(format!(
                    "{} is given twice in one layer: by {first} and by {}",
                    at.show(),
                    src.display()
                ));
            }
        }
        self.plan.insert(at.clone(), e);
        self.given_by.insert(at.clone(), src.to_path_buf());
        Ok(())
    }

    fn parents(&mut self, at: &ImagePath, src: &Path) -> Result<(), String> {
        let names: Vec<&str> = at.0.split('/').collect();
        let mut p = ImagePath(String::new());
        for n in &names[..names.len().saturating_sub(1)] {
            p = p.join(n);
            match self.plan.get(&p) {
                Some(e) if e.kind == Kind::Dir => {}
                Some(_) => {
                    return Err(format!(
                        "{} (from {}) would be inside {}, which is not a folder in this layer",
                        at.show(),
                        src.display(),
                        p.show()
                    ))
                }
                None => {
                    let mut d = dir_entry(Owner::default());
                    d.implicit = true;
                    self.plan.insert(p.clone(), d);
                }
            }
        }
        Ok(())
    }
}

fn dir_entry(owner: Owner) -> Entry {
    Entry {
        kind: Kind::Dir,
        mode: 0o755,
        owner,
        implicit: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "rbuild-layer-unit-{}-{}",
            std::process::id(),
            store::files::nonce()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn dest(s: &str) -> ImagePath {
        ImagePath::parse(s).unwrap()
    }

    #[test]
    fn a_folder_is_normalised_whatever_its_modes() {
        let d = scratch();
        fs::create_dir_all(d.join("src/bin")).unwrap();
        fs::write(d.join("src/bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(d.join("src/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(d.join("src/notes"), "n").unwrap();
        fs::set_permissions(d.join("src/notes"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(d.join("src/bin"), fs::Permissions::from_mode(0o700)).unwrap();
        symlink("bin/tool", d.join("src/link")).unwrap();
        let spec = LayerSpec {
            items: vec![Item::Dir {
                src: d.join("src"),
                dest: dest("/opt/lab"),
                owner: Owner::default(),
            }],
        };
        let p = plan(&spec).unwrap();
        let got: Vec<(String, u32, bool)> = p
            .iter()
            .map(|(k, e)| (k.0.clone(), e.mode, e.implicit))
            .collect();
        assert_eq!(
            got,
            [
                ("opt".to_string(), 0o755, true),
                ("opt/lab".into(), 0o755, false),
                ("opt/lab/bin".into(), 0o755, false),
                ("opt/lab/bin/tool".into(), 0o755, false),
                ("opt/lab/link".into(), 0o777, false),
                ("opt/lab/notes".into(), 0o644, false),
            ]
        );
        assert_eq!(
            p[&dest("/opt/lab/link")].kind,
            Kind::Symlink(b"bin/tool".to_vec())
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_same_path_twice_is_refused_but_folders_merge() {
        let d = scratch();
        fs::create_dir_all(d.join("a/etc")).unwrap();
        fs::create_dir_all(d.join("b/etc")).unwrap();
        fs::write(d.join("a/etc/x"), "1").unwrap();
        fs::write(d.join("b/etc/x"), "2").unwrap();
        let o = Owner::default();
        let merge = LayerSpec {
            items: vec![
                Item::Dir {
                    src: d.join("a"),
                    dest: dest("/"),
                    owner: o,
                },
                Item::File {
                    content: Content::Text("y".into()),
                    dest: dest("/etc/y"),
                    mode: Some(0o600),
                    owner: Owner { uid: 1, gid: 2 },
                },
            ],
        };
        let p = plan(&merge).unwrap();
        assert_eq!(p[&dest("/etc/y")].mode, 0o600);
        assert_eq!(p[&dest("/etc/y")].owner, Owner { uid: 1, gid: 2 });
        let twice = LayerSpec {
            items: vec![
                Item::Dir {
                    src: d.join("a"),
                    dest: dest("/"),
                    owner: o,
                },
                Item::Dir {
                    src: d.join("b"),
                    dest: dest("/"),
                    owner: o,
                },
            ],
        };
        let e = plan(&twice).unwrap_err();
        assert!(
            e.starts_with("/etc/x is given twice in one layer: by "),
            "{e}"
        );
        let under_file = LayerSpec {
            items: vec![
                Item::File {
                    content: Content::Text("f".into()),
                    dest: dest("/etc"),
                    mode: None,
                    owner: o,
                },
                Item::File {
                    content: Content::Text("g".into()),
                    dest: dest("/etc/g"),
                    mode: None,
                    owner: o,
                },
            ],
        };
        assert!(plan(&under_file)
            .unwrap_err()
            .contains("which is not a folder"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn special_files_and_missing_sources_are_named() {
        let d = scratch();
        fs::create_dir_all(d.join("s")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("s/fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let o = Owner::default();
        let e = plan(&LayerSpec {
            items: vec![Item::Dir {
                src: d.join("s"),
                dest: dest("/"),
                owner: o,
            }],
        })
        .unwrap_err();
        assert!(e.contains("s/fifo: a device, FIFO or socket"), "{e}");
        let e = plan(&LayerSpec {
            items: vec![Item::File {
                content: Content::Src(d.join("nope")),
                dest: dest("/x"),
                mode: None,
                owner: o,
            }],
        })
        .unwrap_err();
        assert!(
            e.starts_with("file ") && e.contains("nope: No such file"),
            "{e}"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
