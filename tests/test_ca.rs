//! A certificate authority made at test time (rcgen), and server certificates it signs: the
//! mail servers' TLS is tested with real certificate checks, no key material in the repo.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::harness::TempDir;

/// A CA whose certificate is written to `ca_file` (what `tls_ca_file` points at).
pub struct TestCa {
    pub dir: TempDir,
    pub ca_file: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    issued: usize,
}

/// A server certificate and its key, as PEM files.
pub struct ServerCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let dir = TempDir::new("test-ca");
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let ca_file = dir.0.join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).expect("write CA file");
        TestCa {
            issuer: Issuer::new(params, key),
            ca_file,
            dir,
            issued: 0,
        }
    }

    /// A certificate for `names` (host names or IP addresses) signed by this CA.
    pub fn server_cert(&mut self, names: &[&str]) -> ServerCert {
        self.issued += 1;
        let key = KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        let cert_file = self.dir.0.join(format!("server-{}.pem", self.issued));
        let key_file = self.dir.0.join(format!("server-{}.key", self.issued));
        std::fs::write(&cert_file, cert.pem()).expect("write server certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write server key");
        ServerCert {
            cert_file,
            key_file,
        }
    }
}
