//! Hooks against a backend that misbehaves or was taken over: a redirect to another host is a failed call
//! (the token and signature never reach the third party, and a message is not counted delivered), a huge
//! answer is not read past its cap, and `https://` hooks work with a private CA from `[hooks] ca_file`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use common::TestGateway;
use odd_gateway::client::{Client, ClientError};

const SECRET: &str = "hook-secret-0123456789";

/// Counts what reached it: the third party a redirect points at.
async fn third_party() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .fallback(
            |State(hits): State<Arc<AtomicUsize>>, _body: Bytes| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"user": {"id": "mallory", "nick": "", "avatar": ""}}))
            },
        )
        .with_state(hits.clone());
    (serve(app).await, hits)
}

async fn serve(app: Router) -> String {
    common::serve_app(app).await
}

/// A backend whose every hook answers 307 to `to`, counting the calls.
async fn redirecting(to: String) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .fallback(move |State(calls): State<Arc<AtomicUsize>>| {
            let to = to.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Response::builder()
                    .status(StatusCode::TEMPORARY_REDIRECT)
                    .header(header::LOCATION, to)
                    .body(Body::empty())
                    .unwrap_or_default()
            }
        })
        .with_state(calls.clone());
    (serve(app).await, calls)
}

fn refusal(result: Result<Client, ClientError>) -> String {
    match result {
        Err(ClientError::Status { description, .. }) => description,
        Err(other) => panic!("expected a status, got {other}"),
        Ok(_) => panic!("the connect was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_connect_hook_fails_closed_and_the_token_goes_nowhere_else() {
    let (elsewhere, third_hits) = third_party().await;
    let (backend, calls) = redirecting(format!("{elsewhere}/steal")).await;
    let gw = TestGateway::start_with(move |c| {
        c.hooks.secret = SECRET.into();
        c.hooks.connect.url = format!("{backend}/connect");
    })
    .await;
    let why = refusal(Client::connect(&gw.tcp_url(), "some-user-token").await);
    assert!(why.contains("answered with an error"), "{why}");
    // Where the hook lives, and where it pointed, are the operator's business, not the client's.
    assert!(
        !why.contains("http") && !why.contains("127.0.0.1") && !why.contains("steal"),
        "{why}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        third_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_message_hook_is_not_delivered_and_retries() {
    let (elsewhere, third_hits) = third_party().await;
    let (backend, calls) = redirecting(format!("{elsewhere}/steal")).await;
    let gw = TestGateway::start_with(move |c| {
        common::people(c);
        c.hooks.secret = SECRET.into();
        c.hooks.message.url = format!("{backend}/messages");
    })
    .await;
    let (alice, pipe, _) = common::member_at(&gw.tcp_url(), "alice", "r").await;
    alice
        .say(pipe, "r", "for the backend only")
        .await
        .expect("sent");
    // The hook keeps failing and retrying (with backoff): two calls, nothing followed, nothing delivered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the message hook did not retry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        third_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    let delivered = common::metric_at(
        &gw.http_url(),
        r#"odd_gateway_hook_calls_total{hook="message",outcome="delivered"}"#,
    )
    .await
    .unwrap_or(0.0);
    assert_eq!(delivered, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_connect_answer_is_not_read_past_its_cap() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let app = Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            use futures::StreamExt;
            // 100 MiB of a JSON string, in 64 KiB chunks, counted as the gateway pulls them.
            let open = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"{\"user\":\""))
            });
            let chunks = futures::stream::iter(0..1600).map(move |_| {
                counter.fetch_add(65536, Ordering::SeqCst);
                Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 65536]))
            });
            Response::new(Body::from_stream(open.chain(chunks)))
        }
    });
    let backend = serve(app).await;
    let gw = TestGateway::start_with(move |c| {
        c.hooks.secret = SECRET.into();
        c.hooks.connect.url = format!("{backend}/connect");
        c.hooks.connect.timeout_ms = 5_000;
    })
    .await;
    let started = Instant::now();
    let why = refusal(Client::connect(&gw.tcp_url(), "t").await);
    assert!(why.contains("longer than"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The gateway stopped reading at its cap (hyper may have buffered a few chunks ahead).
    let pulled = sent.load(Ordering::SeqCst);
    assert!(
        pulled < 8 << 20,
        "{pulled} bytes were pulled from the backend"
    );
}

/// A private CA, a `localhost` certificate it signed, and the CA's PEM written to `dir`.
fn private_ca(dir: &std::path::Path) -> (std::path::PathBuf, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let ca_file = dir.join("hooks-ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write");
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key");
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .expect("cert");
    (ca_file, tls)
}

/// Serves `app` over TLS on 127.0.0.1; returns its port.
async fn serve_tls(app: Router, tls: rustls::ServerConfig) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_hook_works_with_a_private_ca_and_check_config_reads_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca_file, tls) = private_ca(dir.path());
    let app = Router::new().fallback(|| async {
        axum::Json(serde_json::json!({"user": {"id": "carol", "nick": "Carol", "avatar": ""}}))
    });
    let port = serve_tls(app, tls).await;
    let url = format!("https://localhost:{port}/connect");
    let (hook, ca) = (url.clone(), ca_file.clone());
    let gw = TestGateway::start_with(move |c| {
        c.hooks.secret = SECRET.into();
        c.hooks.connect.url = hook;
        c.hooks.ca_file = Some(ca);
    })
    .await;
    let c = Client::connect(&gw.tcp_url(), "carols-token")
        .await
        .expect("the https hook answered");
    assert_eq!(c.user.id, "carol");
    // Without the CA the same hook cannot be trusted: the connect fails closed.
    let gw = TestGateway::start_with(move |c| {
        c.hooks.secret = SECRET.into();
        c.hooks.connect.url = url;
    })
    .await;
    let why = refusal(Client::connect(&gw.tcp_url(), "carols-token").await);
    assert!(why.ends_with("unavailable: unreachable"), "{why}");
    // A CA file that is not PEM stops the configuration check.
    let mut config = odd_gateway::config::Config::default();
    config.hooks.connect.url = "https://localhost:1/connect".into();
    config.hooks.ca_file = Some(dir.path().join("missing.pem"));
    assert!(config.validate().is_err());
    config.hooks.ca_file = Some(ca_file);
    config.hooks.message.url = "ftp://backend/messages".into();
    let err = config.validate().expect_err("ftp is not a hook URL");
    assert!(err.to_string().contains("hooks.message.url"), "{err}");
}

/// A hook without a secret would be signed with an empty key (anyone can forge that), and a short HS256 secret
/// can be guessed: both stop the configuration check, naming the key.
#[test]
fn hooks_need_a_secret_and_hs256_a_long_one() {
    let mut config = odd_gateway::config::Config::default();
    config.hooks.message.url = "http://backend.internal/messages".into();
    let err = config.validate().expect_err("a hook without a secret");
    assert!(err.to_string().contains("hooks.secret"), "{err}");
    config.hooks.secret = "short".into();
    assert!(config.validate().is_err(), "a 5-character secret");
    config.hooks.secret = SECRET.into();
    config.validate().expect("a 22-character secret");
    config.auth.jwt_secret = Some("x".into());
    let err = config.validate().expect_err("a 1-byte HS256 secret");
    assert!(err.to_string().contains("auth.jwt_secret"), "{err}");
    config.auth.jwt_secret = Some("0123456789abcdef0123456789abcdef".into());
    config.validate().expect("a 32-byte secret");
}
