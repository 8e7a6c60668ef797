//! TLS for IMAP and SMTP: trusted roots (the system's plus an optional private CA) and failures
//! explained in words that name the server, so an operator can tell a wrong host name from a
//! missing CA. There is no fallback to plain text: a failed handshake fails the connection.

use std::error::Error;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, CertificateError, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::imap::{ImapError, ImapIo};

/// Every certificate in a PEM file (other PEM sections, such as keys, are ignored).
pub(crate) fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not a valid PEM certificate file: {error}"))
}

/// A client config trusting the system's roots and the certificates of `extra_ca_pem`.
fn client_config(extra_ca_pem: Option<&[u8]>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(pem) = extra_ca_pem {
        for cert in parse_certificates(pem)? {
            roots
                .add(cert)
                .map_err(|error| format!("CA certificate not usable: {error}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("tls setup: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Wraps `stream` in TLS to `host`, checking its certificate; `port` only names the server.
pub(crate) async fn wrap_imap<S: ImapIo + 'static>(
    stream: S,
    host: &str,
    port: u16,
    extra_ca_pem: Option<&[u8]>,
) -> Result<Box<dyn ImapIo>, ImapError> {
    let config = client_config(extra_ca_pem).map_err(ImapError::Tls)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|error| ImapError::Tls(format!("{host:?} is not a TLS server name: {error}")))?;
    let tls = crate::imap::timed("TLS handshake", async {
        TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|error| ImapError::Tls(explain(host, port, &error)))
    })
    .await?;
    Ok(Box::new(tls))
}

/// "TLS with host:port failed: <why>", with the certificate problem in plain words when
/// `error` (or one of its sources) is one.
pub(crate) fn explain(host: &str, port: u16, error: &(dyn Error + 'static)) -> String {
    let server = format!("{host}:{port}");
    let mut source: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(rustls::Error::InvalidCertificate(why)) =
            current.downcast_ref::<rustls::Error>()
        {
            return certificate_problem(&server, host, why);
        }
        // tokio-rustls reports the rustls error inside an io::Error.
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(rustls::Error::InvalidCertificate(why)) =
                inner.downcast_ref::<rustls::Error>()
            {
                return certificate_problem(&server, host, why);
            }
        }
        source = current.source();
    }
    format!("TLS with {server} failed: {error}")
}

fn certificate_problem(server: &str, host: &str, why: &CertificateError) -> String {
    match why {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
            "TLS certificate of {server} is not trusted: not signed by a known CA \
             (for a private CA set tls_ca_file) ({why:?})"
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("TLS certificate of {server} is not valid for the host name {host:?} ({why:?})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("TLS certificate of {server} has expired ({why:?})")
        }
        other => format!("TLS certificate of {server} rejected: {other:?}"),
    }
}
