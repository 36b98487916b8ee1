//! Mutual TLS for a Dask cluster: a private CA per cluster and the certificates its processes
//! and its clients present, made with `rcgen` at `%cluster up` (no Python needed on the login
//! node).
//!
//! The files live in the cluster's state directory `STATE/NAME/tls/` (on the file system the
//! nodes share with the kernel, like the scheduler file), the directory 0700 and every file 0600
//! ([`crate::private`]):
//!
//! | file | what |
//! | --- | --- |
//! | `ca.pem` | the cluster's CA certificate, which every process and client trusts (and nothing else) |
//! | `node.pem`, `node-key.pem` | the scheduler's and workers' certificate and key (server and client auth) |
//! | `client.pem`, `client-key.pem` | what the kernel and `%%python` present when they connect |
//!
//! The CA's private key is never written: nothing signs later (grow jobs reuse the node
//! certificate), so a stolen state directory cannot mint certificates for other clusters.
//! Keys are EC P-256; the certificates are valid from a day before creation (clock skew between
//! nodes) for a year.
//!
//! Dask checks the chain and demands a certificate from both ends (`CERT_REQUIRED`), but not
//! host names (`check_hostname = False`: a cluster's own CA, addresses by IP), so the
//! certificates carry no subject alternative names.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

use crate::private::{self, UnsafeLocation};

/// The CA certificate's file name.
pub const CA_FILE: &str = "ca.pem";
/// The scheduler's and workers' certificate.
pub const NODE_CERT: &str = "node.pem";
/// The scheduler's and workers' private key.
pub const NODE_KEY: &str = "node-key.pem";
/// The certificate of everything that connects on the user's behalf.
pub const CLIENT_CERT: &str = "client.pem";
/// The client's private key.
pub const CLIENT_KEY: &str = "client-key.pem";

/// Dask's setting that refuses unencrypted connections.
pub const ENV_REQUIRE_ENCRYPTION: &str = "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION";
/// Dask's setting for the CA file every role trusts.
pub const ENV_CA_FILE: &str = "DASK_DISTRIBUTED__COMM__TLS__CA_FILE";
/// Dask's settings for the scheduler's certificate and key.
pub const ENV_SCHEDULER: [&str; 2] = [
    "DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__CERT",
    "DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__KEY",
];
/// Dask's settings for the workers' (and nannies') certificate and key.
pub const ENV_WORKER: [&str; 2] = [
    "DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT",
    "DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY",
];
/// Dask's settings for a client's certificate and key.
pub const ENV_CLIENT: [&str; 2] = [
    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY",
];

/// Certificates could not be made or stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The directory would sit where another user could replace the files.
    #[error("refusing to keep the cluster's TLS keys there: {0}")]
    UnsafeLocation(#[from] UnsafeLocation),
    /// A file or directory could not be written.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `rcgen` failed (should not happen with these parameters).
    #[error("making the certificates: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// What a client presents to a TLS scheduler: the CA it trusts, its certificate and its key
/// (paths, never contents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTls {
    /// The CA certificate (PEM).
    pub ca_file: PathBuf,
    /// The client certificate (PEM).
    pub cert: PathBuf,
    /// The client's private key (PEM).
    pub key: PathBuf,
}

impl ClientTls {
    /// The environment that makes a Dask client (`Client()`, `Client(scheduler_file=…)`) use
    /// these files and refuse plain TCP.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        vec![
            (ENV_REQUIRE_ENCRYPTION, "True".to_owned()),
            (ENV_CA_FILE, path(&self.ca_file)),
            (ENV_CLIENT[0], path(&self.cert)),
            (ENV_CLIENT[1], path(&self.key)),
        ]
    }

    /// Checks that the three files exist and are files; the message names the first that is not.
    pub fn check_files(&self) -> Result<(), String> {
        for (what, path) in [
            ("CA file", &self.ca_file),
            ("certificate", &self.cert),
            ("key", &self.key),
        ] {
            if !path.is_file() {
                return Err(format!("the TLS {what} {} is not a file", path.display()));
            }
        }
        Ok(())
    }
}

/// The certificate files of one cluster, in its `tls/` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTls {
    dir: PathBuf,
}

impl ClusterTls {
    /// The files in `dir` (`STATE/NAME/tls`), whether or not they exist yet.
    pub fn in_dir(dir: impl Into<PathBuf>) -> ClusterTls {
        ClusterTls { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca.pem`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(CA_FILE)
    }

    /// `node.pem`.
    pub fn node_cert(&self) -> PathBuf {
        self.dir.join(NODE_CERT)
    }

    /// `node-key.pem`.
    pub fn node_key(&self) -> PathBuf {
        self.dir.join(NODE_KEY)
    }

    /// What the kernel and `%%python` present: the CA, `client.pem` and `client-key.pem`.
    pub fn client(&self) -> ClientTls {
        ClientTls {
            ca_file: self.ca_file(),
            cert: self.dir.join(CLIENT_CERT),
            key: self.dir.join(CLIENT_KEY),
        }
    }

    /// Whether all five files are there (a cluster found again without its record).
    pub fn exists(&self) -> bool {
        let client = self.client();
        [
            self.ca_file(),
            self.node_cert(),
            self.node_key(),
            client.cert,
            client.key,
        ]
        .iter()
        .all(|p| p.is_file())
    }

    /// Makes a fresh CA and the node and client certificates for cluster `cluster` and writes
    /// them (replacing earlier ones): the directory 0700, the files 0600. Refuses, writing
    /// nothing, when the directory would sit under one that other users can write
    /// ([`private::check_location`]).
    pub fn create(&self, cluster: &str) -> Result<(), TlsError> {
        private::check_location(&self.dir)?;
        private::create_dir(&self.dir).map_err(|source| TlsError::Io {
            path: self.dir.clone(),
            source,
        })?;
        // Checked again now that it exists: a symlink or a foreign directory of that name.
        private::check_location(&self.dir)?;

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        set_validity(&mut ca_params);
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("rust-cluster-kernel CA of Dask cluster {cluster}"),
        );
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |role: &str, usages: &[ExtendedKeyUsagePurpose]| {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::default();
            set_validity(&mut params);
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(
                DnType::CommonName,
                format!("rust-cluster-kernel {role} of Dask cluster {cluster}"),
            );
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = usages.to_vec();
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &issuer)?;
            Ok::<_, rcgen::Error>((cert.pem(), key.serialize_pem()))
        };
        let (node_cert, node_key) = leaf(
            "node",
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        let (client_cert, client_key) = leaf("client", &[ExtendedKeyUsagePurpose::ClientAuth])?;
        let client = self.client();
        for (path, text) in [
            (self.node_key(), node_key),
            (client.key, client_key),
            (self.node_cert(), node_cert),
            (client.cert, client_cert),
            (self.ca_file(), ca_cert.pem()),
        ] {
            private::write_file(&path, text.as_bytes())
                .map_err(|source| TlsError::Io { path, source })?;
        }
        Ok(())
    }
}

/// Valid from yesterday (the clocks of nodes differ) to a year from now.
fn set_validity(params: &mut CertificateParams) {
    use chrono::Datelike;
    let day = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let today = chrono::Utc::now().date_naive();
    params.not_before = day(today - chrono::Days::new(1));
    params.not_after = day(today + chrono::Days::new(366));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private::tests::{mode, scratch};
    use std::os::unix::fs::PermissionsExt;
    use x509_parser::prelude::*;

    fn pem_der(path: &Path) -> Vec<u8> {
        let text = std::fs::read(path).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&text).unwrap();
        pem.contents
    }

    #[test]
    fn certificates_chain_to_the_cluster_ca_and_files_are_private() {
        let base = scratch("tls-create");
        let tls = ClusterTls::in_dir(base.join("state/rust-cluster-kernel/demo/tls"));
        assert!(!tls.exists());
        tls.create("demo").unwrap();
        assert!(tls.exists());
        assert_eq!(mode(tls.dir()), 0o700);
        let client = tls.client();
        for file in [
            tls.ca_file(),
            tls.node_cert(),
            tls.node_key(),
            client.cert.clone(),
            client.key.clone(),
        ] {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        let names: Vec<String> = std::fs::read_dir(tls.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 5, "no CA key is kept: {names:?}");

        let ca_der = pem_der(&tls.ca_file());
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        assert!(ca.is_ca());
        assert_eq!(ca.subject(), ca.issuer());
        ca.verify_signature(None).unwrap();
        for (path, server) in [(tls.node_cert(), true), (client.cert.clone(), false)] {
            let der = pem_der(&path);
            let (_, cert) = X509Certificate::from_der(&der).unwrap();
            assert!(!cert.is_ca());
            assert_eq!(cert.issuer(), ca.subject());
            cert.verify_signature(Some(ca.public_key())).unwrap();
            assert!(cert.validity().is_valid());
            let eku = cert.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.client_auth);
            assert_eq!(eku.server_auth, server, "{}", path.display());
        }
        // The keys are PEM private keys of the certificates' type.
        for key in [tls.node_key(), client.key] {
            let text = std::fs::read_to_string(&key).unwrap();
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
            KeyPair::from_pem(&text).unwrap();
        }

        // A second cluster's CA does not sign the first one's certificates.
        let other = ClusterTls::in_dir(base.join("state/rust-cluster-kernel/other/tls"));
        other.create("other").unwrap();
        let other_der = pem_der(&other.ca_file());
        let (_, other_ca) = X509Certificate::from_der(&other_der).unwrap();
        let node_der = pem_der(&tls.node_cert());
        let (_, node) = X509Certificate::from_der(&node_der).unwrap();
        assert!(node.verify_signature(Some(other_ca.public_key())).is_err());

        // Made again (a new cluster of the same name): new keys, same modes.
        let before = std::fs::read(tls.node_key()).unwrap();
        tls.create("demo").unwrap();
        assert_ne!(std::fs::read(tls.node_key()).unwrap(), before);
        assert_eq!(mode(&tls.node_key()), 0o600);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn keys_are_not_written_under_a_directory_others_can_write() {
        let base = scratch("tls-refuse");
        let shared = base.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let tls = ClusterTls::in_dir(shared.join("rust-cluster-kernel/demo/tls"));
        let err = tls.create("demo").unwrap_err();
        assert!(matches!(err, TlsError::UnsafeLocation(_)), "{err}");
        assert!(err.to_string().contains("refusing"), "{err}");
        assert!(
            !shared.join("rust-cluster-kernel").exists(),
            "nothing written"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn client_env_names_dask_settings() {
        let client = ClusterTls::in_dir("/s/c/tls").client();
        let env = client.env();
        assert_eq!(
            env,
            [
                ("DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "True".into()),
                (
                    "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
                    "/s/c/tls/ca.pem".into()
                ),
                (
                    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
                    "/s/c/tls/client.pem".into()
                ),
                (
                    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY",
                    "/s/c/tls/client-key.pem".into()
                ),
            ]
        );
        assert!(client
            .check_files()
            .unwrap_err()
            .contains("/s/c/tls/ca.pem"));
    }
}
