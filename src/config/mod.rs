//! Configuration: defaults, then a TOML file, then environment variables, then command-line flags.
//!
//! With no file and no flags the gateway runs the dev profile: every transport on 127.0.0.1 at the documented
//! ports, a SQLite file under `data/`, anonymous connects allowed. `docs/configuration.md` lists every key.

mod cli;
pub mod dev_secrets;
pub mod example;
mod history;
mod hooks;
pub mod layers;
mod limits;
mod listen;
mod rtc;
mod server_api;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cli::{Cli, GatewayCommand};
pub use history::History;
pub use hooks::{
    ca_certificates as hook_ca_certificates, ConnectHook, Hooks, MessageHook, PublishHook,
};
pub use limits::Limits;
pub use listen::ListenAddr;
pub use rtc::Rtc;
pub use server_api::{Admin, ApiKey, Cors, ServerApi};
pub use validate::MIN_JWT_SECRET_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("configuration: {reason}")]
    Layered { reason: String },
}

/// Dev is friendly (anonymous connects, generated certificates); prod refuses to guess.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Default,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Dev,
    Prod,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub profile: Profile,
    /// Where the SQLite file and generated dev certificates live.
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub database: Database,
    pub limits: Limits,
    pub rooms: RoomsConfig,
    pub auth: Auth,
    pub tls: Tls,
    pub log: Log,
    pub cluster: Cluster,
    pub server_api: ServerApi,
    pub admin: Admin,
    pub cors: Cors,
    pub hooks: Hooks,
    pub history: History,
    pub rtc: Rtc,
    /// Test-only fault injection. Never read from a file, the environment or flags.
    #[serde(skip)]
    pub faults: Faults,
}

/// Faults a test can switch on to check that failures clean up like normal ends.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// A session of this user panics right after any join succeeds (before its own bookkeeping records it).
    pub panic_after_join_by: Option<String>,
}

/// Scale-out (`[cluster]`): several gateways share rooms and presence over NATS. Empty `nats_url`: one node,
/// everything in process. `docs/cluster.md` explains the design.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// `nats://host:4222`. Empty: single node (the in-process bus).
    pub nats_url: String,
    /// This node's name, unique in the cluster. Empty: a random one at every start.
    pub node: String,
    /// Subject prefix; clusters that share a NATS server use different ones.
    pub subject_prefix: String,
    /// How often a node announces who is present on it.
    pub heartbeat_ms: u64,
    /// A node not heard from for this long is taken as dead: its users leave presence everywhere.
    pub node_ttl_ms: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            nats_url: String::new(),
            node: String::new(),
            subject_prefix: "odd".to_string(),
            heartbeat_ms: 1_000,
            node_ttl_ms: 5_000,
        }
    }
}

/// Certificate for TLS-over-TCP, QUIC and HTTPS/WSS (the plain HTTP port has none). Unset in the dev profile: a
/// generated self-signed one in `<data_dir>/certs/`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain. Empty: in the dev profile a self-signed certificate is generated into
    /// `<data_dir>/certs/` at first start and reused; in prod, TLS and QUIC refuse to start without one.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// The `[rooms]` section (the room service itself is `rooms::Rooms`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// Rights (`r`, `w`, `x` letters) of a user joining a room they have no stored rights in.
    pub default_rights: String,
    /// Joining an unknown room creates it, with the joiner as owner (`rwx`). Off: unknown rooms are refused.
    pub create_on_join: bool,
    /// History page size when a request names none.
    pub history_default: u32,
    /// Largest history page a request may ask for.
    pub history_max: u32,
    /// How long a `send`'s `cid` is remembered: a repeat within it is answered with the first's `mid` and
    /// neither stored nor delivered again.
    pub send_dedupe_window_ms: u64,
    /// Rooms with this many users present or more are "crowded": joins and leaves push no
    /// `NetGroup.Neighbor.*` to everyone, and the coverage list a joiner gets holds 100 of the users present
    /// (with `count` and `more`). 0: no limit.
    pub presence_limit: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            default_rights: "rw".to_string(),
            create_on_join: true,
            history_default: 50,
            history_max: 500,
            send_dedupe_window_ms: 600_000,
            presence_limit: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    pub tcp: ListenAddr,
    pub tls: ListenAddr,
    pub quic: ListenAddr,
    pub http: ListenAddr,
    /// The same routes as `http` over TLS (`wss://host:7443/im`), with the TLS/QUIC certificate.
    pub https: ListenAddr,
    /// The SFU's UDP port (WebRTC media: ICE, DTLS, SRTP; docs/rtc.md).
    pub rtc: ListenAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`. Empty: `sqlite://<data_dir>/odd.db`.
    pub url: String,
    /// PostgreSQL only: keep the tables in this schema (created if missing).
    pub schema: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Empty tokens get a fresh guest identity. Unset: on in the dev profile, off in prod.
    pub anonymous: Option<bool>,
    /// Static `token -> user` pairs, for small deployments and tests.
    pub tokens: Vec<StaticToken>,
    /// HMAC secret for HS256 JWTs. Prefer the `ODD_JWT_SECRET` environment variable to the file.
    pub jwt_secret: Option<String>,
    /// Public keys (PEM: RSA, EC P-256/P-384 or Ed25519) for RS*/PS*/ES*/EdDSA JWTs.
    pub jwt_public_keys: Vec<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`), re-read every `jwks_refresh_secs` for key rotation.
    pub jwks_file: Option<PathBuf>,
    pub jwks_refresh_secs: u64,
    /// When set, every JWT must carry this `iss`.
    pub jwt_issuer: Option<String>,
    /// When set, every JWT must carry this `aud`.
    pub jwt_audience: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    pub token: String,
    pub id: String,
    #[serde(default)]
    pub nick: String,
    #[serde(default)]
    pub avatar: String,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Default,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `odd_gateway=debug`. `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: Profile::Dev,
            data_dir: PathBuf::from("data"),
            listen: Listen::default(),
            database: Database::default(),
            limits: Limits::default(),
            rooms: RoomsConfig::default(),
            tls: Tls::default(),
            auth: Auth::default(),
            log: Log::default(),
            cluster: Cluster::default(),
            server_api: ServerApi::default(),
            admin: Admin::default(),
            cors: Cors::default(),
            hooks: Hooks::default(),
            history: History::default(),
            rtc: Rtc::default(),
            faults: Faults::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            tcp: ListenAddr::local(7100),
            tls: ListenAddr::local(7101),
            quic: ListenAddr::local(7102),
            http: ListenAddr::local(7180),
            https: ListenAddr::local(7443),
            rtc: ListenAddr::local(7103),
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            anonymous: None,
            tokens: Vec::new(),
            jwt_secret: None,
            jwt_public_keys: Vec::new(),
            jwks_file: None,
            jwks_refresh_secs: 300,
            jwt_issuer: None,
            jwt_audience: None,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
            filter: "info".to_string(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults (the file alone: `layers::load` adds the environment).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Connections allowed per IP address (`usize::MAX`: no limit).
    pub fn connections_per_ip(&self) -> usize {
        match (self.limits.max_connections_per_ip, self.profile) {
            (Some(n), _) => n,
            (None, Profile::Dev) => usize::MAX,
            (None, Profile::Prod) => 1_000,
        }
    }

    /// Whether a `/metrics` scrape must present a server-API key.
    pub fn metrics_need_key(&self) -> bool {
        self.server_api
            .metrics_need_key
            .unwrap_or(self.profile == Profile::Prod)
    }

    /// Whether an empty token may connect as a guest.
    pub fn anonymous_allowed(&self) -> bool {
        self.auth.anonymous.unwrap_or(self.profile == Profile::Dev)
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("odd.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// The room policy these settings describe.
    pub fn room_policy(&self) -> crate::rooms::RoomPolicy {
        crate::rooms::RoomPolicy {
            default_mask: crate::protocol::args::Mask::from_letters(&self.rooms.default_rights)
                .unwrap_or(crate::protocol::args::Mask::R.union(crate::protocol::args::Mask::W)),
            create_on_join: self.rooms.create_on_join,
            history_default: self.rooms.history_default,
            history_max: self.rooms.history_max,
            cid_window: std::time::Duration::from_millis(self.rooms.send_dedupe_window_ms),
            presence_limit: match self.rooms.presence_limit {
                0 => usize::MAX,
                n => n,
            },
            ..crate::rooms::RoomPolicy::default()
        }
    }

    /// Settings for tests and benches: every listener on an ephemeral 127.0.0.1 port.
    pub fn ephemeral(data_dir: &Path) -> Config {
        Config {
            data_dir: data_dir.to_path_buf(),
            listen: Listen {
                tcp: ListenAddr::local(0),
                tls: ListenAddr::local(0),
                quic: ListenAddr::local(0),
                http: ListenAddr::local(0),
                https: ListenAddr::local(0),
                rtc: ListenAddr::local(0),
            },
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_dev_profile() {
        let c = Config::default();
        assert_eq!(c.listen.tcp.addr().map(|a| a.port()), Some(7100));
        assert_eq!(c.listen.http.addr().map(|a| a.port()), Some(7180));
        assert!(c.anonymous_allowed());
        assert_eq!(c.database_url(), "sqlite://data/odd.db");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn file_overrides_and_off() {
        let c = Config::from_toml(
            r#"
            profile = "prod"
            [listen]
            tcp = "0.0.0.0:9000"
            quic = "off"
            [[auth.tokens]]
            token = "s3cret"
            id = "1001"
            nick = "alice"
        "#,
        )
        .expect("parses");
        assert_eq!(c.listen.tcp.addr().map(|a| a.port()), Some(9000));
        assert_eq!(c.listen.quic.addr(), None);
        assert!(!c.anonymous_allowed());
        assert_eq!(c.auth.tokens[0].nick, "alice");
        assert!(Config::from_toml("[listen]\nbogus = 1").is_err());
    }

    #[test]
    fn a_cluster_needs_postgres_and_a_sane_ttl() {
        let mut c = Config::default();
        c.cluster.nats_url = "nats://127.0.0.1:4222".into();
        assert!(c.validate().is_err(), "SQLite per node would split history");
        c.database.url = "postgres://postgres@127.0.0.1/test".into();
        assert!(c.validate().is_ok());
        c.cluster.node_ttl_ms = c.cluster.heartbeat_ms;
        assert!(c.validate().is_err(), "TTL must cover missed heartbeats");
        c.cluster.node_ttl_ms = 5_000;
        c.cluster.subject_prefix = "odd.>".into();
        assert!(c.validate().is_err(), "wildcards in the prefix");
    }
}
