//! Image references as Docker reads them: `[REGISTRY/]REPO[:TAG][@sha256:HEX]`, where the first
//! component is a registry when it holds a `.` or a `:` or is `localhost`; an unqualified name
//! means `docker.io/library/NAME`. No kernel interface.

use std::fmt;
use std::net::IpAddr;

use crate::oci::OciError;

/// Docker Hub as references name it, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `HOST[:PORT]` as written (`docker.io` for Docker Hub)
    pub registry: String,
    /// the repository path on that registry (`library/alpine`)
    pub repo: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`
    pub digest: Option<String>,
    /// NAME as the user wrote it, for the local tag (`alpine`, `127.0.0.1:5000/a/b`)
    pub written: String,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, OciError> {
        let bad = |why: String| OciError::msg(format!("{s:?} is not an image reference: {why}"));
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                store::digest::Digest::parse_sha256(d)
                    .ok_or_else(|| bad(format!("{d:?} is not sha256:<64 hex>")))?;
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (path, tag) = match name.rfind(':') {
            Some(i) if !name[i + 1..].contains('/') => {
                (&name[..i], Some(name[i + 1..].to_string()))
            }
            _ => (name, None),
        };
        store::reference::validate_tag(&format!("{path}:{}", tag.as_deref().unwrap_or("latest")))
            .map_err(|e| bad(e.to_string()))?;
        let mut comps: Vec<&str> = path.split('/').collect();
        let registry =
            if comps.len() > 1 && (comps[0].contains(['.', ':']) || comps[0] == "localhost") {
                comps.remove(0).to_string()
            } else {
                DOCKER_HUB.to_string()
            };
        let mut repo = comps.join("/");
        let hub = matches!(registry.as_str(), DOCKER_HUB | "index.docker.io");
        if hub && !repo.contains('/') {
            repo = format!("library/{repo}");
        }
        Ok(Reference {
            registry: if hub { DOCKER_HUB.into() } else { registry },
            repo,
            tag: tag.or_else(|| digest.is_none().then(|| "latest".to_string())),
            digest,
            written: path.to_string(),
        })
    }

    /// The host (and port) whose `/v2/` API serves this registry.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The manifest to ask for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".into())
    }

    /// NAME:TAG for the local store, when the reference has a tag.
    pub fn local_tag(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.written))
    }
}

/// Whether `registry` (`HOST[:PORT]`) is this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_as_docker_reads_them() {
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repo.as_str()),
            ("docker.io", "library/alpine")
        );
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = Reference::parse("127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repo, "team/app");
        assert_eq!(r.local_tag().unwrap(), "127.0.0.1:5000/team/app:1.2");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), d);
        assert!(Reference::parse("Alpine").is_err());
        assert!(Reference::parse("a@sha256:12").is_err());
        assert_eq!(Reference::parse("user/app").unwrap().repo, "user/app");
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80")
        );
        assert!(!is_loopback("198.18.0.1:5000") && !is_loopback("example.com"));
    }
}
