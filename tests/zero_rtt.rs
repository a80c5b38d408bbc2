//! QUIC 0-RTT for returning phones, spoken with quinn directly (not our client library): a client holding a
//! ticket from its first connection sends `connect` in its first flight and the gateway accepts it; the
//! client library does the same on its own.

mod common;

use std::time::Duration;

use common::TestGateway;
use odd_gateway::client::Client;
use odd_gateway::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler};
use tokio::io::AsyncReadExt;

fn connect_frame(txid: u16) -> bytes::BytesMut {
    let args = br#"{"name":"connect","uuid":"","parameters":{"token":""}}"#;
    let body = CommandMessage::encode(0, txid, args, &[]).expect("fits");
    common::length_prefixed(&Frame::new(MessageType::Command, 0, body).to_bytes(1))
}

/// Reads the first command from `recv`: its status code.
async fn first_code(recv: &mut quinn::RecvStream) -> String {
    let mut reassembler = Reassembler::new(1 << 20);
    loop {
        let len = recv.read_u32().await.expect("length");
        let mut buf = vec![0; len as usize];
        recv.read_exact(&mut buf).await.expect("frame");
        let frame = Frame::decode(bytes::Bytes::from(buf)).expect("valid frame");
        if let Ok(Some(Message::Command { command, .. })) = reassembler.push(frame) {
            let args: serde_json::Value = serde_json::from_slice(&command.args).expect("json");
            return args["code"].as_str().unwrap_or_default().to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_client_connects_in_0rtt() {
    let gw = TestGateway::start().await;
    let endpoint = common::quinn_client(&gw, true);
    let addr = gw.gateway.quic_addr.expect("quic");

    // First visit: a full handshake, no ticket yet.
    let first = endpoint.connect(addr, "localhost").expect("connect");
    let first = match first.into_0rtt() {
        Ok(_) => panic!("no ticket yet, so no 0-RTT"),
        Err(connecting) => connecting.await.expect("handshake"),
    };
    let (mut send, mut recv) = first.open_bi().await.expect("stream");
    send.write_all(&connect_frame(1)).await.expect("write");
    assert_eq!(first_code(&mut recv).await, "NetConnection.Connect.Success");
    first.close(0u32.into(), b"bye");

    // Back again: `connect` goes in the first flight and is accepted from early data.
    let again = endpoint.connect(addr, "localhost").expect("connect");
    let (conn, accepted) = again
        .into_0rtt()
        .unwrap_or_else(|_| panic!("a ticket from the first visit allows 0-RTT"));
    let (mut send, mut recv) = conn.open_bi().await.expect("stream in 0-RTT");
    send.write_all(&connect_frame(1)).await.expect("write");
    assert_eq!(first_code(&mut recv).await, "NetConnection.Connect.Success");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), accepted)
            .await
            .expect("handshake completes"),
        "the gateway accepted the early data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_library_comes_back_in_0rtt_and_works_on() {
    let gw = TestGateway::start().await;
    let opts = odd_gateway::client::ClientOptions::trusting(
        gw.gateway.cert_path.as_deref().expect("cert"),
    )
    .expect("trust");
    let url = format!(
        "quic://localhost:{}",
        gw.gateway.quic_addr.expect("quic").port()
    );
    let first = Client::connect_with(&url, "", &opts).await.expect("first");
    first.close().await;
    // The same options hold the ticket: this connect goes in 0-RTT, and the pipe works after the handshake.
    let mut again = Client::connect_with(&url, "", &opts).await.expect("again");
    let pipe = again.create("messaging").await.expect("pipe");
    again.join(pipe, "early").await.expect("join");
    again.say(pipe, "early", "hi").await.expect("said");
    common::pushes::until_data(&mut again, "hi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_the_gateway_lost_costs_a_retry_not_a_failure() {
    let Some(gw) = common::DbGateway::start(common::Backend::Sqlite, |_| {}).await else {
        return;
    };
    let cert = gw.gateway.cert_path.clone().expect("cert");
    let opts = odd_gateway::client::ClientOptions::trusting(&cert).expect("trust");
    let url = |gw: &common::DbGateway| {
        format!(
            "quic://localhost:{}",
            gw.gateway.quic_addr.expect("quic").port()
        )
    };
    Client::connect_with(&url(&gw), "", &opts)
        .await
        .expect("first")
        .close()
        .await;
    // A new process on the same data: same certificate, no tickets.
    let gw = gw.restart().await;
    assert_eq!(gw.gateway.cert_path.as_deref(), Some(cert.as_path()));
    let again = Client::connect_with(&url(&gw), "", &opts)
        .await
        .expect("the refused 0-RTT connect is retried with a full handshake");
    let pipe = again.create("messaging").await.expect("works");
    assert!(pipe > 0);
}

/// A QUIC client that abandons a connection (application close code 2: its path died, it reconnects
/// elsewhere) keeps its session for the reconnect; code 0 is a goodbye that ends it (docs/resilience.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_quic_connection_parks_its_session() {
    let gw = TestGateway::start().await;
    let endpoint = common::quinn_client(&gw, false);
    let addr = gw.gateway.quic_addr.expect("quic");
    for (code, parked) in [(2u32, 1.0), (0, 1.0)] {
        let conn = endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let (mut send, mut recv) = conn.open_bi().await.expect("stream");
        send.write_all(&connect_frame(1)).await.expect("write");
        assert_eq!(first_code(&mut recv).await, "NetConnection.Connect.Success");
        conn.close(code.into(), b"");
        // Code 2 parks the session (the count goes to 1); code 0 ends it (the count stays at 1).
        assert!(
            common::until_metric(
                &gw.http_url(),
                "odd_gateway_sessions_parked",
                parked,
                Duration::from_secs(5)
            )
            .await,
            "after close code {code}"
        );
    }
    let closed = common::metric_at(
        &gw.http_url(),
        r#"odd_gateway_connections_closed_total{reason="client_closed",transport="quic"}"#,
    )
    .await;
    assert_eq!(closed, Some(1.0), "code 0 is a goodbye");
}
