//! A recipe's lock file (`NAME.lock` beside `NAME.toml`): the ImageID and layer DiffIDs the
//! recipe builds to, on any machine, at any time, for any user. `rbuild build --locked` fails
//! on any difference, naming the first layer that differs; `--write-lock` records them.
//! Kernel interfaces: read(2), and write(2) + rename(2) for an atomic update.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What a lock file holds: `sha256:` ids.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub image: String,
    pub layers: Vec<String>,
}

/// `images/NAME.lock` for `images/NAME.toml`.
pub fn path_for(recipe: &Path) -> PathBuf {
    recipe.with_extension("lock")
}

pub fn read(path: &Path) -> Result<Lock, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| {
        e.message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string()
    })
}

/// The text of a lock file for the recipe named `recipe` (its file name).
pub fn render(recipe: &str, lock: &Lock) -> String {
    let mut s = format!(
        "# The ids `rbuild build {recipe}` gives on any machine, at any time, for any user.\n\
         # Checked by `rbuild build --locked` (tools/recipe-check in CI); rewritten by\n\
         # `rbuild build --write-lock` after a deliberate change of the recipe or its files.\n\
         image = \"{}\"\nlayers = [\n",
        lock.image
    );
    for l in &lock.layers {
        s.push_str(&format!("  \"{l}\",\n"));
    }
    s.push_str("]\n");
    s
}

/// Writes `text` to `path` through a temporary file in the same folder and rename(2).
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            e.to_string()
        })
}

/// None when `got` is what `want` says; else what differs, in one line.
pub fn difference(want: &Lock, got: &Lock) -> Option<String> {
    if want == got {
        return None;
    }
    for i in 0..want.layers.len().max(got.layers.len()) {
        let (w, g) = (want.layers.get(i), got.layers.get(i));
        if w != g {
            let what = if i == 0 {
                "the base".to_string()
            } else {
                format!("layer {i}")
            };
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "nothing".into());
            return Some(format!(
                "{what} is {}, the lock file says {}",
                show(g),
                show(w)
            ));
        }
    }
    Some(format!(
        "the image is {}, the lock file says {} (same layers: the config differs)",
        got.image, want.image
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_lock_reads_back_and_differences_name_the_layer() {
        let a = Lock {
            image: format!("sha256:{}", "a".repeat(64)),
            layers: vec![format!("sha256:{}", "b".repeat(64))],
        };
        let back: Lock = toml::from_str(&render("x.toml", &a)).unwrap();
        assert_eq!(back, a);
        assert_eq!(difference(&a, &a), None);
        let mut b = a.clone();
        b.layers.push("sha256:cc".into());
        b.image = "sha256:dd".into();
        assert_eq!(
            difference(&a, &b).unwrap(),
            "layer 1 is sha256:cc, the lock file says nothing"
        );
        let mut c = a.clone();
        c.image = "sha256:dd".into();
        assert!(difference(&a, &c).unwrap().contains("the config differs"));
    }
}
