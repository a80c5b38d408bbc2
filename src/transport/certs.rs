//! The certificate TLS-over-TCP and QUIC present: the configured PEM files, or a self-signed dev certificate
//! generated at first start (dev profile only) into `<data_dir>/certs/`, which is git-ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CertError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("cannot write the dev certificate to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate the dev certificate: {0}")]
    Generate(String),
    #[error("the certificate and key do not fit together: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS and QUIC need a certificate: set tls.cert and tls.key (the prod profile does not generate one)")]
    Missing,
}

/// A certificate chain and its key, ready for rustls.
pub struct CertMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Where the chain came from (for logs and for clients that want to trust a dev certificate).
    pub cert_path: PathBuf,
}

impl CertMaterial {
    /// Loads the configured files, or (if `generate`) the dev certificate, creating it if needed.
    pub fn load(
        cert: Option<&Path>,
        key: Option<&Path>,
        data_dir: &Path,
        generate: bool,
    ) -> Result<CertMaterial, CertError> {
        match (cert, key) {
            (Some(c), Some(k)) => CertMaterial::from_files(c, k),
            _ if generate => CertMaterial::dev(data_dir),
            _ => Err(CertError::Missing),
        }
    }

    pub fn from_files(cert: &Path, key: &Path) -> Result<CertMaterial, CertError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| CertError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|_| CertError::Pem {
                path: cert.to_path_buf(),
                what: "certificate",
            })?;
        if chain.is_empty() {
            return Err(CertError::Pem {
                path: cert.to_path_buf(),
                what: "certificate",
            });
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| CertError::Pem {
            path: key.to_path_buf(),
            what: "private key",
        })?;
        Ok(CertMaterial {
            chain,
            key,
            cert_path: cert.to_path_buf(),
        })
    }

    /// The dev certificate for `localhost` and `127.0.0.1`, generated once and reused across restarts.
    pub fn dev(data_dir: &Path) -> Result<CertMaterial, CertError> {
        let dir = data_dir.join("certs");
        let cert = dir.join("dev-cert.pem");
        let key = dir.join("dev-key.pem");
        if !cert.exists() || !key.exists() {
            let generated = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ])
            .map_err(|e| CertError::Generate(e.to_string()))?;
            let write = |p: &Path, data: String| {
                std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::write(p, data))
                    .map_err(|source| CertError::Write {
                        path: p.to_path_buf(),
                        source,
                    })
            };
            write(&cert, generated.cert.pem())?;
            write(&key, generated.signing_key.serialize_pem())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600));
            }
            tracing::info!(path = %cert.display(), "generated a self-signed dev certificate");
        }
        CertMaterial::from_files(&cert, &key)
    }

    /// SHA-256 of the leaf certificate, as `AB:CD:...`: what a client pins or checks.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.chain[0].as_ref());
        digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// A rustls server config with these credentials and the given ALPN protocols.
    pub fn server_config(
        &self,
        alpn: &[&[u8]],
        tls13_only: bool,
    ) -> Result<Arc<rustls::ServerConfig>, CertError> {
        Ok(Arc::new(self.config(alpn, tls13_only)?))
    }

    /// QUIC's: TLS 1.3 only, and 0-RTT for returning clients, with stateful single-use tickets (rustls
    /// accepts early data only with those, and takes each ticket out of its store when it is used, so a
    /// replayed first flight is refused its early data: `quic/early.rs`). quinn requires the early data
    /// limit to be `u32::MAX` (QUIC's own flow control bounds it).
    pub fn quic_server_config(
        &self,
        alpn: &[&[u8]],
        tickets: usize,
    ) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let mut config = self.config(alpn, true)?;
        config.max_early_data_size = u32::MAX;
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(tickets);
        Ok(Arc::new(config))
    }

    fn config(&self, alpn: &[&[u8]], tls13_only: bool) -> Result<rustls::ServerConfig, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider);
        let builder = if tls13_only {
            builder.with_protocol_versions(&[&rustls::version::TLS13])?
        } else {
            builder.with_safe_default_protocol_versions()?
        };
        let mut config = builder
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// A rustls client config trusting `roots` (e.g. a dev certificate), offering `alpn`.
pub fn client_config(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    tls13_only: bool,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider);
    let builder = if tls13_only {
        builder.with_protocol_versions(&[&rustls::version::TLS13])?
    } else {
        builder.with_safe_default_protocol_versions()?
    };
    let mut config = builder.with_root_certificates(store).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Reads every certificate of a PEM file (for clients told to trust it).
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CertError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
        })
}
