//! Everything sessions share, built once at start: token verification (with its key refresh), the store
//! (watched for health), metrics, the cluster bus and its loop, rooms, the SFU, the memory budget.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::auth::ConfigVerifier;
use crate::bus::{Bus, ClusterBus, Wire};
use crate::config::Config;
use crate::http;
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::session::{self, Context};
use crate::store::Store;

/// Everything sessions share: token verification (with its key refresh), the store (watched for health),
/// metrics, the cluster bus and its loop, rooms, the memory budget.
pub(super) async fn services(
    config: &Config,
    wire: Option<Arc<dyn Wire>>,
    shutdown: &CancellationToken,
    listeners: &TaskTracker,
) -> anyhow::Result<Arc<Context>> {
    let config_verifier = Arc::new(
        ConfigVerifier::new(&config.auth, config.anonymous_allowed())
            .map_err(|e| anyhow::anyhow!("auth keys: {e}"))?,
    );
    tokio::spawn(config_verifier.clone().refresh_keys(
        Duration::from_secs(config.auth.jwks_refresh_secs),
        shutdown.clone(),
    ));
    let url = config.database_url();
    let store = Store::open(&url, config.database.schema.as_deref())
        .await
        .with_context(|| format!("cannot open the database {}", redact(&url)))?;
    info!(backend = store.backend(), url = %redact(&url), "store ready");
    let metrics = Arc::new(Metrics::new());
    metrics.cluster_nodes.set(1);
    let bus = cluster_bus(config, wire, &metrics).await?;
    if bus.cluster().is_some() {
        store.set_shared();
    }
    let rooms = Rooms::new(
        store.clone(),
        config.room_policy(),
        metrics.clone(),
        bus.clone(),
    );
    tokio::spawn(http::health::watch_store(
        store.clone(),
        metrics.clone(),
        Duration::from_secs(5),
        shutdown.clone(),
    ));
    let budget = crate::transport::MemoryBudget::new(config.limits.memory_budget_bytes);
    metrics
        .memory_budget_bytes
        .set(i64::try_from(budget.limit()).unwrap_or(i64::MAX));
    if let Bus::Cluster(cluster) = &bus {
        let c = &config.cluster;
        let cluster = crate::rooms::run_cluster(
            rooms.clone(),
            figures(&rooms, &metrics, &budget, store.backend()),
            cluster.clone(),
            Duration::from_millis(c.heartbeat_ms),
            Duration::from_millis(c.node_ttl_ms),
            shutdown.clone(),
        )
        .await?;
        listeners.spawn(cluster);
    }
    let (events, event_tasks) =
        crate::hooks::events_hook(&config.hooks, rooms.node(), store.clone(), metrics.clone());
    if let Some(tasks) = event_tasks {
        // First of this node's events: whatever the backend holds from this node's earlier life (a crash
        // leaves no disconnects) is over.
        events.record("node_start", "", None, serde_json::json!({}));
        info!(url = %config.hooks.events.url, "events hook on");
        listeners.spawn(tasks.run(shutdown.clone()));
    }
    let sfu = match config.listen.rtc.addr() {
        Some(addr) => {
            let rtc = config.rtc.clone();
            let (sfu, task) = crate::sfu::Sfu::start(
                addr,
                config.rtc.public_ip,
                config.rtc.udp_recv_buffer_bytes,
                &config.rtc.app,
                move |announce| rtc.settings(announce),
                metrics.clone(),
                shutdown.clone(),
            )
            .await
            .with_context(|| format!("cannot bind the SFU's UDP port {addr}"))?;
            let bound = sfu
                .local_addr()
                .map_or_else(|| addr.to_string(), |a| a.to_string());
            info!(%bound, "SFU listening (udp, WebRTC media)");
            let m = metrics.clone();
            listeners.spawn(async move {
                // Every str0m call on network input is guarded; a panic here is a bug in the SFU's own code.
                // It cannot be resumed (the peer connections were its state): say so loudly.
                if let Err(e) = task.await {
                    if e.is_panic() {
                        m.rtc_failures_total.with_label_values(&["engine"]).inc();
                        tracing::error!(
                            "the SFU task panicked: WebRTC media is off until the gateway restarts"
                        );
                    }
                }
            });
            sfu
        }
        None => crate::sfu::Sfu::off(),
    };
    let ctx = Arc::new(Context {
        sfu,
        limits: config.limits.clone(),
        auth: crate::hooks::Authenticator::new(
            config_verifier.clone(),
            crate::hooks::ConnectHook::new(&config.hooks),
            metrics.clone(),
        )
        .reserving(&config.server_api.publisher_id),
        verifier: config_verifier,
        publish_hook: crate::hooks::PublishHook::new(
            &config.hooks,
            config.limits.max_message_bytes,
            metrics.clone(),
        )
        .map(|hook| {
            info!(url = %config.hooks.publish.url, "publish hook on");
            Arc::new(hook)
        }),
        events,
        rooms,
        metrics,
        store,
        shutdown: shutdown.clone(),
        resumable: Default::default(),
        per_ip: crate::session::per_ip::PerIp::new(config.connections_per_ip()),
        sessions: TaskTracker::new(),
        faults: config.faults.clone(),
        budget,
    });
    if let Bus::Cluster(cluster) = &bus {
        session::remote_resume::serve_takeovers(ctx.clone(), cluster.clone()).await?;
    }
    Ok(ctx)
}

/// This node's overview figures for the admin console (`GET /api/server/nodes`, and every heartbeat in a
/// cluster): the gauges read at scrape time refreshed first, then who the node is.
pub(super) fn figures(
    rooms: &Rooms,
    metrics: &Arc<Metrics>,
    budget: &crate::transport::MemoryBudget,
    backend: &'static str,
) -> crate::rooms::Figures {
    let (rooms, metrics, budget) = (rooms.clone(), metrics.clone(), budget.clone());
    Arc::new(move || {
        http::health::refresh_gauges(&rooms, &metrics, &budget);
        let mut figures = metrics.overview();
        figures["node"] = rooms.node().into();
        figures["version"] = env!("CARGO_PKG_VERSION").into();
        figures["store"]["backend"] = backend.into();
        figures["cluster"] = rooms.bus().cluster().is_some().into();
        figures
    })
}

/// The cluster bus over `wire` if given, else over NATS when `cluster.nats_url` is set, else the in-process one.
async fn cluster_bus(
    config: &Config,
    wire: Option<Arc<dyn Wire>>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Bus> {
    let c = &config.cluster;
    if c.nats_url.is_empty() && wire.is_none() {
        return Ok(Bus::Local);
    }
    let node = if c.node.is_empty() {
        format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    } else {
        c.node.clone()
    };
    let (p, m) = (&c.subject_prefix, metrics.clone());
    let bus = match wire {
        Some(wire) => ClusterBus::join(wire, p, &node, m).await?,
        None => ClusterBus::connect(&c.nats_url, p, &node, m).await?,
    };
    info!(%node, nats = %c.nats_url, prefix = %c.subject_prefix, "joined the cluster bus");
    Ok(Bus::Cluster(bus))
}

/// A database URL fit for logs: any password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}
