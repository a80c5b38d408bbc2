//! Command-line flags; each also reads an `ODD_*` environment variable. Flags beat the environment, which
//! beats the config file; every other key comes from the file or `ODD_<SECTION>__<KEY>` (layers.rs).

use std::path::PathBuf;

use clap::Parser;

use super::{Config, ConfigError, ListenAddr, LogFormat, Profile};

#[derive(Debug, Parser)]
#[command(
    name = "odd-gateway",
    version,
    about = "Odd IM gateway: QUIC, TCP, TLS and WebSocket into one session layer"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
    /// Validate the configuration (file, environment, flags, key and certificate files) and exit: 0 when
    /// valid, non-zero with the reason otherwise. Starts nothing.
    #[arg(long)]
    pub check_config: bool,
    /// TOML config file (see docs/configuration.md).
    #[arg(long, short, env = "ODD_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "ODD_PROFILE")]
    pub profile: Option<Profile>,
    /// Directory for the SQLite file and generated dev certificates.
    #[arg(long, env = "ODD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Plain TCP listener, or `off`.
    #[arg(long, env = "ODD_TCP")]
    pub tcp: Option<ListenAddr>,
    /// TLS-over-TCP listener, or `off`.
    #[arg(long, env = "ODD_TLS")]
    pub tls: Option<ListenAddr>,
    /// QUIC (UDP) listener, or `off`.
    #[arg(long, env = "ODD_QUIC")]
    pub quic: Option<ListenAddr>,
    /// HTTP listener (WebSocket `/im`, `/metrics`, `/healthz`, `/api`), or `off`.
    #[arg(long, env = "ODD_HTTP")]
    pub http: Option<ListenAddr>,
    /// HTTPS listener (the same routes over TLS: `wss://host:7443/im`), or `off`.
    #[arg(long, env = "ODD_HTTPS")]
    pub https: Option<ListenAddr>,
    /// The SFU's UDP port (WebRTC media), or `off`.
    #[arg(long, env = "ODD_RTC")]
    pub rtc: Option<ListenAddr>,
    /// `sqlite://file.db` or `postgres://...`.
    #[arg(long, env = "ODD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Allow connects with an empty token (guest identities).
    #[arg(long, env = "ODD_ANONYMOUS")]
    pub anonymous: Option<bool>,
    #[arg(long, env = "ODD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// NATS server that joins this gateway to a cluster (`nats://127.0.0.1:4222`); unset: single node.
    #[arg(long, env = "ODD_NATS_URL")]
    pub nats_url: Option<String>,
    /// This node's name in the cluster (unset: random).
    #[arg(long, env = "ODD_NODE")]
    pub node: Option<String>,
    /// NATS subject prefix of the cluster.
    #[arg(long, env = "ODD_CLUSTER_PREFIX")]
    pub cluster_prefix: Option<String>,
    /// PEM certificate chain for TLS and QUIC.
    #[arg(long, env = "ODD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS and QUIC.
    #[arg(long, env = "ODD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// What the binary does instead of serving.
#[derive(Debug, clap::Subcommand)]
pub enum GatewayCommand {
    /// Print a complete configuration file: every key with its default and what it does (`odd-gateway
    /// genconfig > gateway.toml`, then edit and start with `--config gateway.toml`).
    Genconfig,
}

impl Cli {
    /// The effective configuration: file (if any) with flags and environment laid over it.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut c = super::layers::load(self.config.as_deref())?;
        if let Some(p) = self.profile {
            c.profile = p;
        }
        if let Some(d) = self.data_dir {
            c.data_dir = d;
        }
        if let Some(a) = self.tcp {
            c.listen.tcp = a;
        }
        if let Some(a) = self.tls {
            c.listen.tls = a;
        }
        if let Some(a) = self.quic {
            c.listen.quic = a;
        }
        if let Some(a) = self.http {
            c.listen.http = a;
        }
        if let Some(a) = self.rtc {
            c.listen.rtc = a;
        }
        if let Some(a) = self.https {
            c.listen.https = a;
        }
        if let Some(u) = self.database_url {
            c.database.url = u;
        }
        if let Some(a) = self.anonymous {
            c.auth.anonymous = Some(a);
        }
        if let Some(u) = self.nats_url {
            c.cluster.nats_url = u;
        }
        if let Some(n) = self.node {
            c.cluster.node = n;
        }
        if let Some(p) = self.cluster_prefix {
            c.cluster.subject_prefix = p;
        }
        if let Some(f) = self.log_format {
            c.log.format = f;
        }
        let api = &mut c.server_api;
        for (var, keys) in [
            ("ODD_API_KEYS", &mut api.keys),
            ("ODD_METRICS_KEYS", &mut api.metrics_keys),
        ] {
            if let Ok(value) = std::env::var(var) {
                *keys = crate::config::ServerApi::keys_from_env(&value)
                    .map_err(|reason| ConfigError::Invalid { key: var, reason })?;
            }
        }
        if let Ok(secret) = std::env::var("ODD_HOOKS_SECRET") {
            if !secret.is_empty() {
                c.hooks.secret = secret;
            }
        }
        // The JWT secret comes from the environment only, so it never shows in `ps`.
        if let Ok(secret) = std::env::var("ODD_JWT_SECRET") {
            if !secret.is_empty() {
                c.auth.jwt_secret = Some(secret);
            }
        }
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            c.tls.cert = Some(cert);
            c.tls.key = Some(key);
        }
        c.validate()?;
        Ok(c)
    }
}
