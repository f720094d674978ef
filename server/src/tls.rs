//! The https listener's certificate and key, read and checked by dpo before dropshot gets them: dropshot
//! panics on a key that does not belong to the certificate (or on no certificate at all), and
//! `config check` must find what `serve` would refuse.

use crate::config::TlsFiles;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::path::PathBuf;

/// Why the certificate and key cannot serve https.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// A file is not PEM as expected.
    #[error("{} is not a PEM file of the expected kind", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with its PEM.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key and the certificate do not go together (or rustls refused them).
    #[error("the key {} does not go with the certificate {}", key.display(), cert.display())]
    Mismatch {
        /// The certificate chain's file.
        cert: PathBuf,
        /// The key's file.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}

/// The TLS settings of the https listener: `files`' chain and key, checked to belong together, speaking
/// HTTP/2 and HTTP/1.1 as dropshot offers them.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let read = |path: &PathBuf| std::fs::read(path).map_err(|source| TlsError::Read { path: path.clone(), source });
    let (cert_pem, key_pem) = (read(&files.cert)?, read(&files.key)?);
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: files.cert.clone(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: files.cert.clone() });
    }
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::Pem { path: files.key.clone(), source })?;
    let mismatch = |source| TlsError::Mismatch { cert: files.cert.clone(), key: files.key.clone(), source };
    let mut config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).map_err(mismatch)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
