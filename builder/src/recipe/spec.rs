//! The recipe format of `rbuild build` (TOML), parsed and checked: a base tarball with its
//! sha256, layers made of the repository's directories and files, tags, and the image config.
//! Every path, mode and owner is checked here, before anything is read or stored; paths in a
//! recipe are relative to the recipe's folder. No kernel interface.
//!
//! ```toml
//! tags = ["lab:3.20"]
//! [base]
//! url = "https://example.org/alpine-minirootfs-3.20.3-x86_64.tar.gz"  # or path = "…"
//! sha256 = "d4e6…"
//! [[layer]]
//! dir = [{ src = "lab", dest = "/" }]          # a folder, normalised (see layer.rs)
//! file = [{ text = "hi\n", dest = "/etc/motd", mode = "0644", owner = "0:0" }]
//! [config]
//! cmd = ["/bin/sh"]
//! env = ["LAB=1"]
//! labels = { "org.opencontainers.image.title" = "lab" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::image::ImageOptions;

/// The most a recipe file may hold: recipes are small, a bigger file is not one.
const MAX_RECIPE_BYTES: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    #[serde(default)]
    tags: Vec<String>,
    base: RawBase,
    #[serde(default)]
    layer: Vec<RawLayer>,
    #[serde(default)]
    config: RawConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    path: Option<String>,
    url: Option<String>,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    #[serde(default)]
    dir: Vec<RawDir>,
    #[serde(default)]
    file: Vec<RawFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    src: String,
    #[serde(default = "slash")]
    dest: String,
    owner: Option<String>,
}

fn slash() -> String {
    "/".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    src: Option<String>,
    text: Option<String>,
    dest: String,
    mode: Option<String>,
    owner: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    cmd: Vec<String>,
    #[serde(default)]
    entrypoint: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A checked recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// the recipe file as given
    pub path: PathBuf,
    pub tags: Vec<String>,
    pub base: Base,
    pub layers: Vec<LayerSpec>,
    /// the image config (`created` is never set: a recipe's id does not depend on the clock)
    pub config: ImageOptions,
}

/// Where the base tarball may be found, and the sha256 of its bytes.
#[derive(Debug, Clone)]
pub struct Base {
    /// lowercase hex
    pub sha256: String,
    /// `path`, against the recipe's folder
    pub path: Option<PathBuf>,
    pub url: Option<String>,
    /// the last part of `path` or `url`: the name looked for in `--source-dir`
    pub file_name: String,
}

/// One layer: its items, in the recipe's order.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum Item {
    /// a folder copied to `dest` (normalised: see layer.rs)
    Dir {
        src: PathBuf,
        dest: ImagePath,
        owner: Owner,
    },
    /// one regular file at `dest`
    File {
        content: Content,
        dest: ImagePath,
        /// permission bits (at most 0o7777); None: 0755 for an executable source, else 0644
        mode: Option<u32>,
        owner: Owner,
    },
}

#[derive(Debug, Clone)]
pub enum Content {
    Src(PathBuf),
    Text(String),
}

/// Numeric owner of a layer's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// An absolute path in the image, normalised: its names without `/`, `.` or empty ones
/// (`/usr//local/./bin` is `usr/local/bin`; `/` is empty). Never holds `..` or NUL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImagePath(pub String);

impl ImagePath {
    pub fn parse(s: &str) -> Result<ImagePath, String> {
        if !s.starts_with('/') {
            return Err(format!("{s:?} must be an absolute path in the image"));
        }
        if s.contains('\0') {
            return Err(format!("{s:?} holds a NUL byte"));
        }
        let mut names = Vec::new();
        for n in s.split('/') {
            match n {
                "" | "." => {}
                ".." => return Err(format!("{s:?} must not hold `..`")),
                n => names.push(n),
            }
        }
        Ok(ImagePath(names.join("/")))
    }

    /// `/` + the path, for messages.
    pub fn show(&self) -> String {
        format!("/{}", self.0)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn join(&self, name: &str) -> ImagePath {
        if self.0.is_empty() {
            ImagePath(name.to_string())
        } else {
            ImagePath(format!("{}/{name}", self.0))
        }
    }
}

/// Reads and checks the recipe at `path`. Errors are one line naming the recipe and the field.
pub fn load(path: &Path) -> Result<Recipe, String> {
    let text = read_small(path)?;
    let raw: RawRecipe = toml::from_str(&text).map_err(|e| {
        // toml's message spans lines (a caret under the source): keep its first line
        e.message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string()
            + &e.span()
                .map(|s| format!(" (at line {})", line_of(&text, s.start)))
                .unwrap_or_default()
    })?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let base = base(raw.base, &folder)?;
    let mut layers = Vec::new();
    for (i, l) in raw.layer.into_iter().enumerate() {
        layers.push(layer(l, &folder).map_err(|e| format!("layer {}: {e}", i + 1))?);
    }
    let c = raw.config;
    Ok(Recipe {
        path: path.to_path_buf(),
        tags: raw.tags,
        base,
        layers,
        config: ImageOptions {
            cmd: c.cmd,
            entrypoint: c.entrypoint,
            env: c.env,
            workdir: c.workdir,
            user: c.user,
            created: None,
            arch: None,
            labels: c.labels,
        },
    })
}

fn read_small(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let m = f.metadata().map_err(|e| e.to_string())?;
    if !m.is_file() {
        return Err("not a regular file".into());
    }
    let mut buf = Vec::new();
    f.take(MAX_RECIPE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if buf.len() as u64 > MAX_RECIPE_BYTES {
        return Err(format!("larger than {MAX_RECIPE_BYTES} bytes"));
    }
    String::from_utf8(buf).map_err(|_| "not UTF-8 text".into())
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn base(b: RawBase, folder: &Path) -> Result<Base, String> {
    let sha256 = crate::checksum::parse_checksum(&b.sha256, "sha256", 64)
        .ok_or_else(|| format!("base.sha256 {:?} is not 64 hex digits", b.sha256))?;
    let from = match (&b.path, &b.url) {
        (None, None) => return Err("base needs a path or a url".into()),
        (Some(p), _) => p.as_str(),
        (None, Some(u)) => u.as_str(),
    };
    if let Some(u) = &b.url {
        let lower = u.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(format!("base.url {u:?} is not an http(s) URL"));
        }
    }
    let file_name = file_name(from).ok_or_else(|| format!("base: {from:?} names no file"))?;
    Ok(Base {
        sha256,
        path: b.path.as_deref().map(|p| folder.join(p)),
        url: b.url,
        file_name,
    })
}

/// The last part of a path or URL (before any `?` or `#`), when it can name a file in a folder.
fn file_name(s: &str) -> Option<String> {
    let s = s.split(['?', '#']).next().unwrap_or("");
    let name = s.rsplit('/').next().unwrap_or("");
    (!name.is_empty() && name != "." && name != ".." && !name.contains('\0'))
        .then(|| name.to_string())
}

fn layer(l: RawLayer, folder: &Path) -> Result<LayerSpec, String> {
    let mut items = Vec::new();
    for d in l.dir {
        items.push(Item::Dir {
            src: folder.join(&d.src),
            dest: ImagePath::parse(&d.dest).map_err(|e| format!("dir.dest {e}"))?,
            owner: owner(d.owner.as_deref())?,
        });
    }
    for f in l.file {
        let content = match (f.src, f.text) {
            (Some(s), None) => Content::Src(folder.join(s)),
            (None, Some(t)) => Content::Text(t),
            _ => return Err(format!("file {:?}: give either src or text", f.dest)),
        };
        let dest = ImagePath::parse(&f.dest).map_err(|e| format!("file.dest {e}"))?;
        if dest.is_root() {
            return Err("file.dest \"/\" is the root folder, not a file".into());
        }
        items.push(Item::File {
            content,
            dest,
            mode: f.mode.as_deref().map(mode).transpose()?,
            owner: owner(f.owner.as_deref())?,
        });
    }
    if items.is_empty() {
        return Err("a layer needs at least one dir or file".into());
    }
    Ok(LayerSpec { items })
}

/// `"0755"` or `"755"`: octal permission bits, at most 0o7777.
fn mode(s: &str) -> Result<u32, String> {
    let ok = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| ok && *m <= 0o7777)
        .ok_or_else(|| format!("mode {s:?} is not octal permission bits such as \"0755\""))
}

/// `"UID:GID"` (numbers: names would need the image's /etc/passwd); None is 0:0.
fn owner(s: Option<&str>) -> Result<Owner, String> {
    let Some(s) = s else {
        return Ok(Owner::default());
    };
    let bad = || format!("owner {s:?} is not UID:GID (numbers)");
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    let num = |v: &str| {
        (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u32>().ok())
            .flatten()
    };
    Ok(Owner {
        uid: num(u).ok_or_else(bad)?,
        gid: num(g).ok_or_else(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_are_normalised_and_checked() {
        assert_eq!(
            ImagePath::parse("/usr//local/./bin/").unwrap().0,
            "usr/local/bin"
        );
        assert!(ImagePath::parse("/").unwrap().is_root());
        assert!(ImagePath::parse("etc/motd").is_err());
        assert!(ImagePath::parse("/etc/../../x").is_err());
        assert!(ImagePath::parse("/a\0b").is_err());
    }

    #[test]
    fn modes_and_owners() {
        assert_eq!(mode("0755").unwrap(), 0o755);
        assert_eq!(mode("4755").unwrap(), 0o4755);
        for bad in ["", "0o755", "9", "17777", "-1", "755 "] {
            assert!(mode(bad).is_err(), "{bad}");
        }
        assert_eq!(owner(None).unwrap(), Owner { uid: 0, gid: 0 });
        assert_eq!(
            owner(Some("1000:100")).unwrap(),
            Owner {
                uid: 1000,
                gid: 100
            }
        );
        for bad in ["root:root", "1000", ":1", "1:", "+1:1", "4294967296:0"] {
            assert!(owner(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names_of_bases() {
        assert_eq!(file_name("https://h/a/b.tar.gz?x=1#y").unwrap(), "b.tar.gz");
        assert_eq!(file_name("../x/base.tar").unwrap(), "base.tar");
        assert!(file_name("https://h/a/").is_none());
        assert!(file_name("https://h/..").is_none());
    }
}
