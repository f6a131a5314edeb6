//! The OCI distribution API (distribution-spec spec.md) over ureq with rustls: the `/v2/`
//! ping, anonymous, Basic and token (Bearer) authentication as the registry's
//! `WWW-Authenticate` challenge asks, manifests (bounded in size, their digests checked by the
//! caller), blobs streamed, uploads (POST then PUT with the digest). HTTPS always, but for a
//! loopback registry or `--tls-verify=false`, where plain HTTP is tried after HTTPS fails.
//! Redirects are followed at most [`MAX_REDIRECTS`] times, credentials only to the same host.
//! No kernel interface of its own (TCP sockets through the HTTP client).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::http::{Method, Request, Response};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Body, SendBody};

use super::auth::{self, Creds};
use super::reference::is_loopback;
use crate::oci::{read_limited, OciError, MAX_MANIFEST};

/// Redirects followed for one request (a loop ends with an error).
pub const MAX_REDIRECTS: u32 = 10;
/// Largest token-server answer and error body read.
const MAX_SMALL: u64 = 1 << 20;

/// How to reach a registry: the CLI's `--tls-verify`, `--cert-dir`, `--authfile`, `--creds`.
#[derive(Debug, Clone, Default)]
pub struct ConnOptions {
    /// `--tls-verify=false`: certificates are not verified and plain HTTP is allowed
    pub insecure: bool,
    /// CA certificates (`*.crt`) to trust instead of the built-in roots; by default
    /// `/etc/containers/certs.d/HOST[:PORT]/` or `/etc/docker/certs.d/HOST[:PORT]/` if present
    pub cert_dir: Option<PathBuf>,
    pub authfile: Option<PathBuf>,
    /// credentials given on the command line (else the auth files')
    pub creds: Option<Creds>,
    /// longest silence tolerated while reading an answer
    pub idle_timeout: Option<Duration>,
}

/// A manifest as fetched: its bytes, `Content-Type` and `Docker-Content-Digest`.
pub type Fetched = (Vec<u8>, Option<String>, Option<String>);

/// What the registry asked for.
#[derive(Debug, Clone)]
enum Auth {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

pub struct Client {
    agent: ureq::Agent,
    /// `https://HOST` or `http://HOST`
    pub base: String,
    host: String,
    pub repo: String,
    /// `pull` or `pull,push`
    actions: String,
    plain_ok: bool,
    creds: Option<Creds>,
    auth: Auth,
    /// the `Authorization` header value in use
    header: Option<String>,
}

fn err(what: &str, e: impl std::fmt::Display) -> OciError {
    OciError::msg(format!("{what}: {e}"))
}

fn ureq_err(what: &str, e: ureq::Error) -> OciError {
    match e {
        ureq::Error::TooManyRedirects => err(
            what,
            format!("more than {MAX_REDIRECTS} redirects (a redirect loop?)"),
        ),
        e => err(what, e),
    }
}

/// A failed connection as one line; a certificate problem says how to trust a CA.
fn connect_error(url: &str, e: ureq::Error) -> OciError {
    let text = e.to_string();
    if text.contains("certificate") {
        return err(
            url,
            format!("{text} (trust the registry's CA with --cert-dir DIR, or /etc/containers/certs.d/HOST:PORT/ca.crt)"),
        );
    }
    ureq_err(url, e)
}

/// The CA certificates in `dir` (`*.crt`, PEM), for [`RootCerts`].
fn load_cas(dir: &Path) -> Result<Vec<Certificate<'static>>, OciError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(OciError::io(dir))?;
    let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for p in names
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
    {
        let f = std::fs::File::open(p).map_err(OciError::io(p))?;
        let pem = read_limited(f, MAX_SMALL, &p.display().to_string())?;
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                out.push(c.to_owned());
            }
        }
    }
    if out.is_empty() {
        return Err(OciError::msg(format!(
            "{}: no CA certificate (*.crt, PEM) found",
            dir.display()
        )));
    }
    Ok(out)
}

fn tls_config(host: &str, o: &ConnOptions) -> Result<TlsConfig, OciError> {
    let mut b = TlsConfig::builder().disable_verification(o.insecure);
    let dir = o.cert_dir.clone().or_else(|| {
        ["/etc/containers/certs.d", "/etc/docker/certs.d"]
            .iter()
            .map(|d| Path::new(d).join(host))
            .find(|d| d.is_dir())
    });
    if let Some(d) = dir {
        b = b.root_certs(RootCerts::new_with_certs(&load_cas(&d)?));
    }
    Ok(b.build())
}

/// Splits a `WWW-Authenticate` challenge: its scheme and `key="value"` parameters.
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                val.push(c);
                chars.next();
            }
        }
        params.push((key.trim().to_ascii_lowercase(), val));
    }
    (scheme.to_ascii_lowercase(), params)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters are kept).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A registry's error answer as one line: status and its `errors[].code/message`.
fn status_error(what: &str, resp: Response<Body>) -> OciError {
    let status = resp.status();
    let body = read_limited(resp.into_body().into_reader(), 4096, "the answer").unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.as_array()?.first()?.clone();
            Some(format!(
                " {} {}",
                e.get("code")?.as_str()?,
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_default();
    err(what, format!("the registry answered {status}{detail}"))
}

impl Client {
    /// Connects to the registry `host` for `repo`: finds the scheme with a ping of `/v2/` and
    /// learns how it authenticates. `push` asks for push rights too.
    pub fn connect(
        host: &str,
        repo: &str,
        push: bool,
        o: &ConnOptions,
    ) -> Result<Client, OciError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(
                o.idle_timeout.unwrap_or(crate::download::IDLE_TIMEOUT),
            ))
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            .max_redirects_will_error(true)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .tls_config(tls_config(host, o)?)
            .build()
            .into();
        let plain_ok = o.insecure || is_loopback(host);
        let creds = o
            .creds
            .clone()
            .or_else(|| auth::lookup(host_key(host), repo, o.authfile.as_deref()));
        let mut c = Client {
            agent,
            base: format!("https://{host}"),
            host: host.to_string(),
            repo: repo.to_string(),
            actions: if push { "pull,push" } else { "pull" }.into(),
            plain_ok,
            creds,
            auth: Auth::Anonymous,
            header: None,
        };
        let https = format!("https://{host}/v2/");
        let resp = match c.raw(Method::GET, &https, None) {
            Ok(r) => r,
            Err(e) => {
                // plain HTTP where allowed, when the answer there is a registry's
                let plain = format!("http://{host}/v2/");
                let answer = if plain_ok {
                    c.raw(Method::GET, &plain, None).ok()
                } else {
                    None
                };
                match answer {
                    Some(r) if matches!(r.status().as_u16(), 200..=299 | 401) => {
                        tracing::debug!("{https}: {e}; using plain http");
                        c.base = format!("http://{host}");
                        r
                    }
                    _ => return Err(connect_error(&https, e)),
                }
            }
        };
        match resp.status().as_u16() {
            200..=299 => {}
            401 => c.authenticate(&resp)?,
            _ => {
                return Err(status_error(
                    &format!("{host} does not serve the registry API: GET {}/v2/", c.base),
                    resp,
                ))
            }
        }
        Ok(c)
    }

    fn raw(
        &self,
        m: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut b = Request::builder().method(m).uri(url);
        if let Some(a) = accept {
            b = b.header("Accept", a);
        }
        if let Some(h) = &self.header {
            b = b.header("Authorization", h);
        }
        let req = b.body(SendBody::none()).map_err(ureq::Error::from)?;
        self.agent.run(req)
    }

    /// Learns the challenge of a 401 answer and gets what it asks for (a token, or Basic).
    fn authenticate(&mut self, resp: &Response<Body>) -> Result<(), OciError> {
        let h = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (scheme, params) = parse_challenge(&h);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        self.auth = match scheme.as_str() {
            "bearer" => Auth::Bearer {
                realm: get("realm").ok_or_else(|| {
                    OciError::msg(format!("{}: a Bearer challenge without a realm", self.host))
                })?,
                service: get("service"),
            },
            "basic" => Auth::Basic,
            _ => {
                return Err(OciError::msg(format!(
                    "{} asks for authentication rbuild does not know: {h:?}",
                    self.host
                )))
            }
        };
        self.header = Some(self.credential()?);
        Ok(())
    }

    fn need_login(&self) -> OciError {
        OciError::msg(format!(
            "{} asks for credentials: run `rbuild login {}` (or pass --creds USER:PASSWORD)",
            self.host,
            host_key(&self.host)
        ))
    }

    /// The `Authorization` header for the current challenge.
    fn credential(&self) -> Result<String, OciError> {
        match &self.auth {
            Auth::Anonymous => Err(self.need_login()),
            Auth::Basic => self
                .creds
                .as_ref()
                .map(Creds::basic)
                .ok_or_else(|| self.need_login()),
            Auth::Bearer { realm, service } => self.token(realm, service.as_deref()),
        }
    }

    /// A token from the registry's token server (distribution's token auth).
    fn token(&self, realm: &str, service: Option<&str>) -> Result<String, OciError> {
        let realm_host = realm
            .strip_prefix("https://")
            .or_else(|| realm.strip_prefix("http://"))
            .map(|r| r.split(['/', '?']).next().unwrap_or(""));
        let plain = realm.starts_with("http://");
        match realm_host {
            Some(h) if !plain || self.plain_ok && (is_loopback(h) || h == self.host) => {}
            _ => {
                return Err(OciError::msg(format!(
                    "{}: token realm {realm:?} is not an https URL",
                    self.host
                )))
            }
        }
        let mut url = format!("{realm}{}", if realm.contains('?') { '&' } else { '?' });
        if let Some(s) = service {
            url.push_str(&format!("service={}&", enc(s)));
        }
        if self.repo.is_empty() {
            // a login: no repository, the account only (as Docker asks)
            let user = self.creds.as_ref().map(|c| c.user.as_str()).unwrap_or("");
            url.push_str(&format!("account={}", enc(user)));
        } else {
            let scope = format!("repository:{}:{}", self.repo, self.actions);
            url.push_str(&format!("scope={}", enc(&scope)));
        }
        let mut b = Request::builder().method(Method::GET).uri(&url);
        if let Some(c) = &self.creds {
            b = b.header("Authorization", c.basic());
        }
        let req = b.body(SendBody::none()).map_err(|e| err(realm, e))?;
        let resp = self.agent.run(req).map_err(|e| ureq_err(realm, e))?;
        match resp.status().as_u16() {
            200..=299 => {}
            401 | 403 if self.creds.is_some() => {
                return Err(OciError::msg(format!(
                    "{} refused the credentials: check them with `rbuild login {}`",
                    self.host,
                    host_key(&self.host)
                )))
            }
            401 | 403 => return Err(self.need_login()),
            _ => return Err(status_error(&format!("token from {realm}"), resp)),
        }
        let body = read_limited(resp.into_body().into_reader(), MAX_SMALL, "the token")?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| err(realm, e))?;
        let t = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OciError::msg(format!("{realm}: the answer holds no token")))?;
        Ok(format!("Bearer {t}"))
    }

    /// A request without a body, authenticated; a 401 is answered once by authenticating
    /// again (a registry may challenge per repository).
    pub fn call(
        &mut self,
        m: Method,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Response<Body>, OciError> {
        let url = format!("{}{path}", self.base);
        let what = format!("{m} {url}");
        let resp = self
            .raw(m.clone(), &url, accept)
            .map_err(|e| ureq_err(&what, e))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        self.authenticate(&resp)?;
        let resp = self.raw(m, &url, accept).map_err(|e| ureq_err(&what, e))?;
        if resp.status().as_u16() == 401 {
            return Err(match self.creds {
                Some(_) => OciError::msg(format!(
                    "{what}: {} refused the credentials for {}",
                    self.host, self.repo
                )),
                None => self.need_login(),
            });
        }
        Ok(resp)
    }

    /// The manifest `reference` (tag or digest): its bytes (at most [`MAX_MANIFEST`]), its
    /// `Content-Type` and `Docker-Content-Digest`.
    pub fn manifest(&mut self, reference: &str) -> Result<Fetched, OciError> {
        let path = format!("/v2/{}/manifests/{reference}", self.repo);
        let resp = self.call(Method::GET, &path, Some(crate::oci::media::ACCEPT))?;
        let what = format!("manifest {}:{reference} on {}", self.repo, self.host);
        if !resp.status().is_success() {
            return Err(status_error(&what, resp));
        }
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
        };
        let (ctype, digest) = (header("content-type"), header("docker-content-digest"));
        if let Some(n) = header("content-length").and_then(|n| n.parse::<u64>().ok()) {
            if n > MAX_MANIFEST {
                return Err(OciError::msg(format!(
                    "{what} is {n} bytes, more than the {MAX_MANIFEST} a manifest may have: refused"
                )));
            }
        }
        let bytes = read_limited(resp.into_body().into_reader(), MAX_MANIFEST, &what)?;
        Ok((bytes, ctype, digest))
    }

    /// A blob's bytes, streamed (the caller checks size and digest).
    pub fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + Send>, OciError> {
        let path = format!("/v2/{}/blobs/{digest}", self.repo);
        let resp = self.call(Method::GET, &path, None)?;
        if !resp.status().is_success() {
            return Err(status_error(
                &format!("blob {digest} on {}", self.host),
                resp,
            ));
        }
        Ok(Box::new(resp.into_body().into_reader()))
    }

    /// Whether the registry has blob `digest` in this repository.
    pub fn has_blob(&mut self, digest: &str) -> Result<bool, OciError> {
        let path = format!("/v2/{}/blobs/{digest}", self.repo);
        let resp = self.call(Method::HEAD, &path, None)?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(&format!("HEAD blob {digest}"), resp)),
        }
    }

    /// Resolves an upload `Location` against the registry's base URL.
    fn location(&self, resp: &Response<Body>) -> Result<String, OciError> {
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::msg(format!("{}: an upload without a Location", self.host)))?;
        if loc.starts_with('/') {
            return Ok(format!("{}{loc}", self.base));
        }
        let host = loc
            .strip_prefix("https://")
            .or_else(|| loc.strip_prefix("http://").filter(|_| self.plain_ok))
            .map(|r| r.split(['/', '?']).next().unwrap_or(""));
        match host {
            Some(_) => Ok(loc.to_string()),
            None => Err(OciError::msg(format!(
                "{}: upload location {loc:?} refused",
                self.host
            ))),
        }
    }

    /// Uploads blob `digest` of `size` bytes from `body` (POST, then PUT with the digest).
    pub fn upload(&mut self, digest: &str, size: u64, body: impl Read) -> Result<(), OciError> {
        let path = format!("/v2/{}/blobs/uploads/", self.repo);
        let resp = self.call(Method::POST, &path, None)?;
        let what = format!("upload of {digest} to {}", self.host);
        if resp.status().as_u16() != 202 {
            return Err(status_error(&what, resp));
        }
        let loc = self.location(&resp)?;
        let url = format!(
            "{loc}{}digest={}",
            if loc.contains('?') { '&' } else { '?' },
            enc(digest)
        );
        let mut body = body;
        let mut b = Request::builder()
            .method(Method::PUT)
            .uri(&url)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", size.to_string());
        if let Some(h) = &self.header {
            b = b.header("Authorization", h);
        }
        let req = b
            .body(SendBody::from_reader(&mut body))
            .map_err(|e| err(&what, e))?;
        let resp = self.agent.run(req).map_err(|e| ureq_err(&what, e))?;
        if !resp.status().is_success() {
            return Err(status_error(&what, resp));
        }
        Ok(())
    }

    /// Puts the manifest `bytes` (of `media_type`) under `tag`.
    pub fn put_manifest(
        &mut self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), OciError> {
        let url = format!("{}/v2/{}/manifests/{tag}", self.base, self.repo);
        let what = format!("PUT manifest {}:{tag} on {}", self.repo, self.host);
        let mut b = Request::builder()
            .method(Method::PUT)
            .uri(&url)
            .header("Content-Type", media_type);
        if let Some(h) = &self.header {
            b = b.header("Authorization", h);
        }
        let req = b.body(bytes.to_vec()).map_err(|e| err(&what, e))?;
        let resp = self.agent.run(req).map_err(|e| ureq_err(&what, e))?;
        if !resp.status().is_success() {
            return Err(status_error(&what, resp));
        }
        Ok(())
    }

    /// Whether the credentials work: the ping answered with them (for `login`).
    pub fn check_login(&mut self) -> Result<(), OciError> {
        if self.header.is_none() {
            // the ping needed no credentials; ask again with them, as Docker does
            self.auth = Auth::Basic;
            self.header = Some(self.credential()?);
        }
        let resp = self.call(Method::GET, "/v2/", None)?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(status_error(&format!("login to {}", self.host), resp)),
        }
    }
}

/// The key credentials are filed under for an API host (Docker Hub's is `docker.io`).
pub fn host_key(host: &str) -> &str {
    if host == "registry-1.docker.io" {
        super::reference::DOCKER_HUB
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg, x",scope="repository:a/b:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(p[1], ("service".into(), "reg, x".into()));
        assert_eq!(p[2].1, "repository:a/b:pull");
        let (s, p) = parse_challenge(r#"Basic realm=x"#);
        assert_eq!((s.as_str(), p[0].1.as_str()), ("basic", "x"));
        assert_eq!(
            enc("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
