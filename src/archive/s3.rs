//! An S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, moto...) as the archive's store,
//! configured by `[retention.s3]`. rusty-s3 signs each request (SigV4, a presigned URL) and
//! parses listings; the requests go over the hyper/rustls client the triage model uses.
//!
//! An S3 PUT is atomic: readers see the old object or the new one, never part of one, and an
//! acknowledged PUT is durable, which is what [`ArchiveStore::put`] promises. Every request is
//! idempotent (a put writes the same bytes again), so failed attempts are retried.

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::Deserialize;
use switchboard_api::Secret;

use super::store::{check_name, ArchiveStore};

const KEY: &str = "retention.s3";
/// How long a signed URL is valid: one attempt's worth, so a leaked one is soon useless.
const SIGNED_FOR: Duration = Duration::from_secs(300);
/// One request and its whole answer (a segment is at most ~64 MiB).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts per request on connection failures, 5xx and 429, with 0.2, 0.8, 3.2 s between.
const ATTEMPTS: u32 = 4;

/// `[retention.s3]`: the archive in an S3-compatible bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket; it must exist (the archive never creates one).
    pub bucket: String,
    /// The folder in the bucket the archive keeps to (`switchboard/archive`); empty: the root.
    #[serde(default)]
    pub prefix: String,
    /// The bucket's region (`eu-west-1`; R2 takes `auto`, MinIO and moto `us-east-1`).
    pub region: String,
    /// The service's URL when it is not AWS (`https://minio.internal:9000`); unset:
    /// `https://s3.<region>.amazonaws.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `<endpoint>/<bucket>/<object>` requests rather than `<bucket>.<endpoint host>/<object>`:
    /// for MinIO, moto and any endpoint named by an IP address.
    #[serde(default)]
    pub path_style: bool,
    /// Allows an `http://` endpoint off loopback (the archive then crosses the network readable).
    #[serde(default)]
    pub allow_http: bool,
    /// Environment variable holding the access key id.
    pub access_key_id_env: String,
    /// Environment variable holding the secret access key.
    pub secret_access_key_env: String,
    /// The resolved key id and secret (never read from TOML).
    #[serde(skip)]
    credentials: Option<(Secret, Secret)>,
}

impl S3Config {
    /// The endpoint requests go to, as errors name it.
    pub fn endpoint(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }

    /// Reads the credentials from the environment variables the config names.
    pub fn resolve_secrets(&mut self, problems: &mut Vec<(String, String)>) {
        let env = |var: &str| std::env::var(var).ok();
        let key = switchboard_api::read_secret(
            &env,
            KEY,
            "access_key_id_env",
            &self.access_key_id_env,
            problems,
        );
        let secret = switchboard_api::read_secret(
            &env,
            KEY,
            "secret_access_key_env",
            &self.secret_access_key_env,
            problems,
        );
        self.credentials = key.zip(secret);
    }

    /// Adds `(key, problem)` pairs for what is wrong.
    pub fn validate(&self, problems: &mut Vec<(String, String)>) {
        let bucket = &self.bucket;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && (bucket.bytes()).all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || b".-".contains(&byte)
            })
            && (bucket.bytes().next()).is_some_and(|byte| byte.is_ascii_alphanumeric())
            && (bucket.bytes().last()).is_some_and(|byte| byte.is_ascii_alphanumeric());
        if !bucket_ok {
            problems.push((
                format!("{KEY}.bucket"),
                format!("`{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"),
            ));
        }
        let prefix = self.prefix.trim_matches('/');
        if !prefix.is_empty() && check_name(prefix).is_err() {
            problems.push((
                format!("{KEY}.prefix"),
                format!(
                    "`{}` is not a folder like switchboard/archive (parts of letters, digits, `.`, `_`, `-`)",
                    self.prefix
                ),
            ));
        }
        let region_ok = !self.region.is_empty()
            && (self.region.bytes()).all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
        if !region_ok {
            problems.push((
                format!("{KEY}.region"),
                format!("`{}` is not a region like eu-west-1", self.region),
            ));
        }
        let Some(endpoint) = &self.endpoint else {
            return;
        };
        let key = format!("{KEY}.endpoint");
        let url = match url::Url::parse(endpoint) {
            Ok(url) if ["http", "https"].contains(&url.scheme()) && url.host().is_some() => url,
            _ => {
                problems.push((
                    key,
                    format!("`{endpoint}` is not an http(s) URL like https://minio.internal:9000"),
                ));
                return;
            }
        };
        if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
            problems.push((
                key.clone(),
                "must not carry a query or credentials (these come from access_key_id_env and secret_access_key_env)".into(),
            ));
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() == "http" && !loopback && !self.allow_http {
            problems.push((
                key.clone(),
                format!(
                    "`{endpoint}` is plain http off this machine: the archive would cross the network readable; \
                     use https, or set {KEY}.allow_http = true on a network you trust"
                ),
            ));
        }
        let by_address = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
        if by_address && !self.path_style {
            problems.push((
                key,
                format!(
                    "an IP address cannot carry the bucket's name in front of it: set {KEY}.path_style = true"
                ),
            ));
        }
    }
}

/// An [`ArchiveStore`] in an S3-compatible bucket (see the module docs).
pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    /// `""` or a folder ending in `/`.
    prefix: String,
    /// Names the store in errors: `S3 bucket "b" at https://...`.
    described: String,
    client: crate::https::HttpsClient,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.described)
    }
}

impl S3Store {
    /// A store as `config` says, its secrets resolved; opens no connection.
    pub fn new(config: &S3Config) -> Result<S3Store, String> {
        let endpoint = config.endpoint();
        let described = format!("S3 bucket \"{}\" at {endpoint}", config.bucket);
        let Some((key, secret)) = &config.credentials else {
            return Err(format!(
                "{described}: no credentials ({KEY}.access_key_id_env and secret_access_key_env were not read)"
            ));
        };
        let style = if config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = url::Url::parse(&endpoint)
            .map_err(|error| error.to_string())
            .and_then(|url| {
                Bucket::new(url, style, config.bucket.clone(), config.region.clone())
                    .map_err(|error| format!("{error:?}"))
            })
            .map_err(|error| format!("{described}: {error}"))?;
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        Ok(S3Store {
            bucket,
            credentials: Credentials::new(key.expose(), secret.expose()),
            prefix,
            described,
            client: crate::https::client()?,
        })
    }

    fn key(&self, name: &str) -> io::Result<String> {
        check_name(name)?;
        Ok(format!("{}{name}", self.prefix))
    }

    /// Sends `action`, retrying what may pass on a second try (signed anew each time, so no
    /// retry outlives its signature); the status and body.
    async fn send<'a, A: S3Action<'a> + Sync>(
        &self,
        action: &A,
        body: Bytes,
        what: &str,
    ) -> io::Result<(StatusCode, Bytes)> {
        let method = hyper::Method::from_bytes(A::METHOD.to_str().as_bytes())
            .map_err(|error| self.error(io::ErrorKind::InvalidInput, what, error))?;
        let mut failure = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << (2 * (attempt - 1)))).await;
            }
            let request = hyper::Request::builder()
                .method(method.clone())
                .uri(action.sign(SIGNED_FOR).as_str())
                .body(Full::new(body.clone()))
                .map_err(|error| self.error(io::ErrorKind::InvalidInput, what, error))?;
            let exchange = async {
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|error| format!("unreachable: {}", error_chain(&error)))?;
                let status = response.status();
                let bytes = (response.into_body().collect().await)
                    .map_err(|error| format!("answer cut off: {}", error_chain(&error)))?
                    .to_bytes();
                Ok::<_, String>((status, bytes))
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
                Err(_) => failure = format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
                Ok(Err(why)) => failure = why,
                Ok(Ok((status, bytes)))
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
                {
                    failure = self.refusal(status, &bytes)
                }
                Ok(Ok(answer)) => return Ok(answer),
            }
        }
        Err(self.error(
            io::ErrorKind::Other,
            what,
            format!("{failure} (after {ATTEMPTS} attempts)"),
        ))
    }

    fn error(&self, kind: io::ErrorKind, what: &str, why: impl std::fmt::Display) -> io::Error {
        io::Error::new(kind, format!("{}: {what}: {why}", self.described))
    }

    /// What an error answer says: its status, S3 error code and message.
    fn refusal(&self, status: StatusCode, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let element = |tag: &str| {
            let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
            let end = start + text[start..].find(&format!("</{tag}>"))?;
            Some(text[start..end].to_owned())
        };
        let mut said = format!("HTTP {}", status.as_u16());
        if let Some(code) = element("Code") {
            said = format!("{said} {code}");
        }
        if let Some(message) = element("Message") {
            said = format!("{said}: {message}");
        }
        // Some services echo the key id back; it is not the secret, but it stays out of logs.
        said.replace(self.credentials.key(), "***")
    }

    /// The error for an unexpected answer to `what`.
    fn refused(&self, what: &str, status: StatusCode, body: &[u8]) -> io::Error {
        let kind = match status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => io::ErrorKind::PermissionDenied,
            StatusCode::NOT_FOUND => io::ErrorKind::NotFound,
            _ => io::ErrorKind::Other,
        };
        self.error(kind, what, self.refusal(status, body))
    }
}

/// An error and its sources, `: `-joined (hyper's own text is only the outermost).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// Whether a 404 says the object is absent (rather than the bucket, or a proxy's page).
fn no_such_key(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("<Code>NoSuchKey</Code>")
}

#[async_trait]
impl ArchiveStore for S3Store {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> io::Result<()> {
        let key = self.key(name)?;
        let action = self.bucket.put_object(Some(&self.credentials), &key);
        let what = format!("put {name}");
        let (status, body) = self.send(&action, bytes.into(), &what).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(self.refused(&what, status, &body))
        }
    }

    async fn get(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let key = self.key(name)?;
        let action = self.bucket.get_object(Some(&self.credentials), &key);
        let what = format!("get {name}");
        let (status, body) = self.send(&action, Bytes::new(), &what).await?;
        match status {
            status if status.is_success() => Ok(Some(body.to_vec())),
            StatusCode::NOT_FOUND if no_such_key(&body) => Ok(None),
            status => Err(self.refused(&what, status, &body)),
        }
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let folder = format!("{}{}", self.prefix, prefix);
        let what = format!("list {prefix}");
        let mut names = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(folder.as_str());
            // Direct children only, as a folder's listing.
            action.with_delimiter("/");
            if let Some(token) = &continuation {
                action.with_continuation_token(token.as_str());
            }
            let (status, body) = self.send(&action, Bytes::new(), &what).await?;
            if !status.is_success() {
                return Err(self.refused(&what, status, &body));
            }
            let listing = std::str::from_utf8(&body)
                .map_err(|error| error.to_string())
                .and_then(|text| {
                    ListObjectsV2::parse_response(text).map_err(|error| error.to_string())
                })
                .map_err(|error| {
                    self.error(
                        io::ErrorKind::InvalidData,
                        &what,
                        format!("not a listing: {error}"),
                    )
                })?;
            names.extend(
                (listing.contents.into_iter())
                    .filter_map(|object| object.key.strip_prefix(&self.prefix).map(str::to_owned)),
            );
            continuation = listing.next_continuation_token;
            if continuation.is_none() {
                break;
            }
        }
        names.sort();
        Ok(names)
    }

    async fn delete(&self, name: &str) -> io::Result<()> {
        let key = self.key(name)?;
        let action = self.bucket.delete_object(Some(&self.credentials), &key);
        let what = format!("delete {name}");
        let (status, body) = self.send(&action, Bytes::new(), &what).await?;
        match status {
            status if status.is_success() => Ok(()),
            StatusCode::NOT_FOUND if no_such_key(&body) => Ok(()),
            status => Err(self.refused(&what, status, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> S3Config {
        toml::from_str(text).unwrap()
    }

    fn problems(config: &S3Config) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        config.validate(&mut problems);
        problems
    }

    const BASE: &str = "bucket = \"acme-archive\"\nregion = \"eu-west-1\"\n\
                        access_key_id_env = \"K\"\nsecret_access_key_env = \"S\"\n";

    #[test]
    fn aws_https_and_loopback_http_pass_while_plain_http_elsewhere_and_bad_names_do_not() {
        assert_eq!(problems(&config(BASE)), vec![]);
        assert_eq!(
            config(BASE).endpoint(),
            "https://s3.eu-west-1.amazonaws.com"
        );
        let local = format!("{BASE}endpoint = \"http://127.0.0.1:9000\"\npath_style = true\n");
        assert_eq!(problems(&config(&local)), vec![]);
        let remote = format!("{BASE}endpoint = \"http://minio.internal:9000\"\n");
        let found = problems(&config(&remote));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "retention.s3.endpoint");
        assert!(found[0].1.contains("allow_http = true"), "{found:?}");
        let allowed = format!("{remote}allow_http = true\n");
        assert_eq!(problems(&config(&allowed)), vec![]);
        let by_ip = format!("{BASE}endpoint = \"https://10.0.0.5:9000\"\n");
        assert!(problems(&config(&by_ip))[0].1.contains("path_style = true"));
        let bad = "bucket = \"Acme_Archive\"\nregion = \"eu west\"\nprefix = \"../up\"\n\
                   access_key_id_env = \"K\"\nsecret_access_key_env = \"S\"\n\
                   endpoint = \"ftp://x\"\n";
        let keys: Vec<String> = problems(&config(bad))
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(
            keys,
            [
                "retention.s3.bucket",
                "retention.s3.prefix",
                "retention.s3.region",
                "retention.s3.endpoint"
            ]
        );
    }

    #[test]
    fn a_refusal_says_its_code_and_message_and_hides_the_key_id() {
        let mut section = config(&format!(
            "{BASE}endpoint = \"http://127.0.0.1:9\"\npath_style = true\n"
        ));
        section.credentials = Some((
            Secret::new("AKIAEXAMPLEKEY000001"),
            Secret::new("example-secret"),
        ));
        let store = S3Store::new(&section).unwrap();
        // The body AWS sends for a key id it does not know (moto checks no presigned request).
        let body =
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidAccessKeyId</Code>\
            <Message>The AWS Access Key Id you provided does not exist in our records.</Message>\
            <AWSAccessKeyId>AKIAEXAMPLEKEY000001</AWSAccessKeyId><RequestId>R1</RequestId></Error>";
        let error = store.refused("list manifests/", StatusCode::FORBIDDEN, body);
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            error.to_string(),
            "S3 bucket \"acme-archive\" at http://127.0.0.1:9: list manifests/: HTTP 403 \
             InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records."
        );
        let echoed = b"<Error><Code>SignatureDoesNotMatch</Code><Message>key AKIAEXAMPLEKEY000001</Message></Error>";
        let error = store
            .refused("put x", StatusCode::FORBIDDEN, echoed)
            .to_string();
        assert!(error.ends_with("SignatureDoesNotMatch: key ***"), "{error}");
    }

    #[test]
    fn a_missing_variable_is_named_and_no_store_is_built_without_credentials() {
        let mut missing = config(
            "bucket = \"acme-archive\"\nregion = \"eu-west-1\"\n\
             access_key_id_env = \"SB_S3_UNIT_UNSET_KEY\"\nsecret_access_key_env = \"SB_S3_UNIT_UNSET_SECRET\"\n",
        );
        let mut found = Vec::new();
        missing.resolve_secrets(&mut found);
        assert_eq!(
            found,
            [
                (
                    "retention.s3.access_key_id_env".to_owned(),
                    "environment variable SB_S3_UNIT_UNSET_KEY is not set".to_owned()
                ),
                (
                    "retention.s3.secret_access_key_env".to_owned(),
                    "environment variable SB_S3_UNIT_UNSET_SECRET is not set".to_owned()
                )
            ]
        );
        let error = S3Store::new(&missing).unwrap_err();
        assert!(
            error.contains("\"acme-archive\" at https://s3.eu-west-1.amazonaws.com"),
            "{error}"
        );
    }
}
