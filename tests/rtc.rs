//! The SFU over real sockets: WebRTC (ICE, DTLS, SRTP) on 127.0.0.1 between str0m test peers and the
//! gateway, driven by the real Odd signaling on a real connection, speaking as the odd.js RTC SDK does
//! (../shared/RTC.md): every RTC command with txid 0, the offer with no stream name, trickled candidates and
//! the empty end-of-candidates, `release` sent twice.

mod common;
#[path = "common/webrtc.rs"]
mod webrtc;

use std::time::{Duration, Instant};

use common::pushes::until;
use common::TestGateway;
use odd_gateway::client::{Client, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use str0m::media::MediaKind;
use webrtc::{Offering, Peer, Seen};

/// How long after a player connects its first keyframe may take (stated in docs/rtc.md).
const KEYFRAME_BOUND: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(10);

/// Alice's WHIP publication (streaming) and bob playing it on a signaling pipe.
struct Watched {
    publisher: Peer,
    bob: Client,
    player: Peer,
    stream: String,
}

/// Alice publishes `msid` over WHIP and streams; bob plays it on a signaling pipe.
async fn whip_watched_by_bob(gw: &TestGateway, msid: &str) -> Watched {
    let off = Offering::new(msid).await;
    let (status, answer, _, stream) =
        post_sdp(&format!("{}/whip/im", gw.http_url()), "alice", &off.offer).await;
    assert_eq!(status, 201, "{answer}");
    let mut publisher = off.answered(&answer);
    connected(&mut publisher).await;
    publisher.stream(Duration::from_millis(20));
    let (mut bob, bp) = signaling(gw, "bob").await;
    let (_, player, _) = play(&mut bob, bp, &stream).await.expect("plays");
    Watched {
        publisher,
        bob,
        player,
        stream,
    }
}

async fn signaling(gw: &TestGateway, who: &str) -> (Client, u16) {
    let c = Client::connect(&gw.tcp_url(), who).await.expect("connect");
    let pipe = c.create("signaling").await.expect("pipe");
    (c, pipe)
}

async fn tell(c: &Client, pipe: u16, args: Value) {
    c.notify(pipe, args).await.expect("sent");
}

async fn end_of_candidates(c: &Client, pipe: u16) {
    tell(
        c,
        pipe,
        json!({"name": "candidate", "candidate": "", "sdpMid": "", "sdpMLineIndex": 0}),
    )
    .await;
}

/// Publishes as the SDK does; returns the pushes up to `NetStream.Publish.Start` (or the error) and the
/// publisher, once connected.
async fn publish(c: &mut Client, pipe: u16, msid: &str) -> Result<(String, Peer), Reply> {
    let off = Offering::new(msid).await;
    tell(
        c,
        pipe,
        json!({"name": "sdp", "type": "offer", "sdp": off.offer}),
    )
    .await;
    tell(
        c,
        pipe,
        json!({"name": "candidate", "candidate": off.candidate, "sdpMid": "0", "sdpMLineIndex": 0}),
    )
    .await;
    end_of_candidates(c, pipe).await;
    let got = until(c, "NetStream.Publish.Start", |p| {
        p.code() == "NetStream.Publish.Start" || p.is_error()
    })
    .await;
    let last = got.last().expect("a push").clone();
    if last.is_error() {
        return Err(last);
    }
    let names: Vec<&str> = got
        .iter()
        .map(|p| {
            if p.name() == "status" {
                p.code()
            } else {
                p.name()
            }
        })
        .collect();
    assert_eq!(
        names,
        ["sdp", "setProperty", "NetStream.Publish.Start"],
        "the SDK's order"
    );
    assert!(got.iter().all(|p| p.pipe == pipe && p.txid == 0));
    let answer = &got[0];
    assert_eq!(answer.args["type"], "answer");
    let stream = last.info()["stream"]
        .as_str()
        .expect("info.stream")
        .to_string();
    assert_eq!(
        got[1].args["info"]["stream"], stream,
        "setProperty names the stream"
    );
    assert_eq!(last.info()["id"], pipe);
    let mut peer = off.answered(answer.args["sdp"].as_str().expect("sdp"));
    connected(&mut peer).await;
    Ok((stream, peer))
}

/// `who` publishes as the SDK does and starts sending a frame of each kind every 20 ms.
async fn streaming(gw: &TestGateway, who: &str, msid: &str) -> (Client, u16, String, Peer) {
    let (mut c, pipe) = signaling(gw, who).await;
    let (stream, publisher) = publish(&mut c, pipe, msid).await.expect("published");
    publisher.stream(Duration::from_millis(20));
    (c, pipe, stream, publisher)
}

async fn connected(peer: &mut Peer) {
    peer.next(WAIT, |s| (*s == Seen::Connected).then_some(()))
        .await
        .expect("ICE and DTLS complete");
}

/// Plays as the SDK does: `play`, the gateway's offer, our answer. Returns the offer and the player, connected.
async fn play(c: &mut Client, pipe: u16, stream: &str) -> Result<(String, Peer, Instant), Reply> {
    tell(
        c,
        pipe,
        json!({"name": "play", "stream": stream, "mode": "all"}),
    )
    .await;
    let got = until(c, "the gateway's offer", |p| {
        p.name() == "sdp" || p.is_error()
    })
    .await;
    let last = got.last().expect("a push").clone();
    if last.is_error() {
        return Err(last);
    }
    assert_eq!(last.args["type"], "offer");
    let offer = last.args["sdp"].as_str().expect("sdp").to_string();
    let (mut peer, answer) = Peer::answer(&offer).await;
    tell(
        c,
        pipe,
        json!({"name": "sdp", "type": "answer", "sdp": answer}),
    )
    .await;
    end_of_candidates(c, pipe).await;
    connected(&mut peer).await;
    Ok((offer, peer, Instant::now()))
}

/// `who` plays `stream` on a signaling pipe of its own, as the SDK does, and has seen `n` frames of each kind.
async fn watching(gw: &TestGateway, who: &str, stream: &str, n: usize) -> (Client, u16, Peer) {
    let (mut c, pipe) = signaling(gw, who).await;
    let (_, mut player, _) = play(&mut c, pipe, stream).await.expect("plays");
    frames(&mut player, n).await;
    (c, pipe, player)
}

/// Counts a player's frames until it has `n` of each kind; checks each is a frame the publisher sent, and
/// returns when its first keyframe came (if one did).
async fn frames(peer: &mut Peer, n: usize) -> Option<Instant> {
    let (mut audio, mut video, mut first_key) = (0, 0, None);
    let deadline = tokio::time::Instant::now() + WAIT;
    while audio < n || video < n {
        let seen = tokio::time::timeout_at(deadline, peer.seen.recv())
            .await
            .unwrap_or_else(|_| panic!("{audio} audio and {video} video frames within {WAIT:?}"))
            .expect("the peer runs");
        let Seen::Frame {
            kind,
            data,
            keyframe,
        } = seen
        else {
            continue;
        };
        if kind == MediaKind::Audio {
            let i = u32::from_be_bytes(data[1..5].try_into().expect("4 bytes"));
            assert_eq!(data, webrtc::opus_frame(i), "audio frame {i} unchanged");
            audio += 1;
        } else {
            let at = if keyframe { 10 } else { 3 };
            let i = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
            assert_eq!(
                data,
                webrtc::vp8_frame(i, keyframe),
                "video frame {i} unchanged"
            );
            if keyframe {
                first_key.get_or_insert(Instant::now());
            }
            video += 1;
        }
    }
    first_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_plays_to_two_players_a_late_one_gets_a_keyframe_and_release_stops_them() {
    let gw = TestGateway::start_with(common::people).await;
    let (mut alice, ap) = signaling(&gw, "alice").await;
    let (stream, publisher) = publish(&mut alice, ap, "alicecam")
        .await
        .expect("published");
    let rtc = gw.gateway.rtc_addr.expect("SFU on");
    assert_eq!(stream, format!("alicecam@{rtc}/im"), "<msid>@<sfu>/<app>");
    publisher.stream(Duration::from_millis(20));

    let mut players = Vec::new();
    for who in ["bob", "carol"] {
        let (mut c, p) = signaling(&gw, who).await;
        let (offer, mut peer, at) = play(&mut c, p, &stream).await.expect("plays");
        for track in ["alicecam-audio", "alicecam-video"] {
            assert!(
                offer.contains(&format!("a=msid:alicecam {track}")),
                "msid on every m-line: {offer}"
            );
        }
        let key = frames(&mut peer, 25).await.expect("a keyframe");
        assert!(
            key.saturating_duration_since(at) < KEYFRAME_BOUND,
            "{who}: keyframe after {:?}",
            key - at
        );
        players.push((c, p, peer));
    }
    // A player's own keyframe request (a browser's PLI after loss) reaches the publisher, and the keyframe
    // it sends comes back. At most one a second per track goes through, so the player asks again (as a
    // browser that still misses a keyframe does) until one is forwarded.
    let mut publisher = publisher;
    while publisher.seen.try_recv().is_ok() {}
    let (_, _, bob_peer) = &mut players[0];
    // Keyframes bob got before asking (the joins') do not count.
    while bob_peer.seen.try_recv().is_ok() {}
    // The request the publisher sees must be the player's (counted `why="player"`), not one for loss.
    let player_requests = r#"odd_gateway_rtc_keyframe_requests_total{why="player"}"#;
    let forwarded = || async {
        common::metric_at(&gw.http_url(), player_requests)
            .await
            .expect("exported from the start")
    };
    let before = forwarded().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        bob_peer.ask_keyframe();
        let asked = publisher
            .next(Duration::from_millis(200), |s| {
                (*s == Seen::KeyframeRequested).then_some(())
            })
            .await;
        if asked.is_some() && forwarded().await > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the player's PLI is forwarded to the publisher"
        );
    }
    bob_peer
        .next(WAIT, |s| {
            matches!(s, Seen::Frame { keyframe: true, .. }).then_some(())
        })
        .await
        .expect("the keyframe reaches the player");

    // A late player: the stream has run for a while (25 more frames of each kind reach bob, half a second at
    // 20 ms) past that keyframe; the gateway asks the publisher for a keyframe.
    frames(bob_peer, 25).await;
    let (mut dave, dp) = signaling(&gw, "dave").await;
    let (_, mut late, at) = play(&mut dave, dp, &stream).await.expect("plays");
    let key = frames(&mut late, 10).await.expect("a keyframe");
    assert!(
        key.saturating_duration_since(at) < KEYFRAME_BOUND,
        "late player: keyframe after {:?}",
        key - at
    );
    players.push((dave, dp, late));

    // The SDK's rtc.unpublish(): release twice on pipe 0, txid 0.
    for _ in 0..2 {
        tell(&alice, 0, json!({"name": "release", "id": ap})).await;
    }
    for (c, p, _) in &mut players {
        let got = until(c, "Play.Stop for both tracks", |r| {
            r.code() == "NetStream.Play.Stop" && r.info()["track"] == "alicecam-video"
        })
        .await;
        let codes: Vec<(String, Value)> = got
            .iter()
            .filter(|r| r.code().starts_with("NetStream."))
            .map(|r| (r.code().to_string(), r.info()["track"].clone()))
            .collect();
        assert_eq!(
            codes,
            [
                ("NetStream.Play.UnpublishNotify".to_string(), Value::Null),
                ("NetStream.Play.Stop".to_string(), json!("alicecam-audio")),
                ("NetStream.Play.Stop".to_string(), json!("alicecam-video")),
            ]
        );
        assert!(got.iter().all(|r| r.pipe == *p));
    }
    assert!(!alice.is_closed(), "the second release is harmless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_of_the_app_room_apply_to_publishing_and_playing() {
    let gw = TestGateway::start_with(common::people).await;
    // alice owns room "stage"; bob may only read it, dave_w only write.
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("connect");
    let mp = alice.create("messaging").await.expect("pipe");
    alice
        .join(mp, "stage")
        .await
        .expect("join")
        .ok()
        .expect("joined");
    for (who, mask) in [("bob", "r"), ("dave", "w")] {
        alice
            .chmod(mp, "stage", who, "=", mask)
            .await
            .expect("answer")
            .ok()
            .expect("chmod");
    }
    let set_app = json!({"name": "setProperty", "info": {"app": "stage"}});

    let (mut bob, bp) = signaling(&gw, "bob").await;
    bob.call(bp, set_app.clone())
        .await
        .expect("answer")
        .ok()
        .expect("set");
    let refused = publish(&mut bob, bp, "bobcam")
        .await
        .err()
        .expect("no w: refused");
    assert_eq!(refused.code(), "NetStream.Failed");

    let (mut al, ap) = signaling(&gw, "alice").await;
    al.call(ap, set_app)
        .await
        .expect("answer")
        .ok()
        .expect("set");
    let (stream, publisher) = publish(&mut al, ap, "stagecam").await.expect("alice has w");
    assert!(stream.ends_with("/stage"));
    publisher.stream(Duration::from_millis(20));

    let (mut dave_w, mlp) = signaling(&gw, "dave").await;
    let no = play(&mut dave_w, mlp, &stream)
        .await
        .err()
        .expect("no r: refused");
    assert_eq!(no.code(), "NetStream.Play.Failed");
    let (bob2, bp2) = signaling(&gw, "bob").await;
    let mut bob2 = bob2;
    let (_, mut peer, _) = play(&mut bob2, bp2, &stream).await.expect("bob has r");
    frames(&mut peer, 5).await;

    // Unknown names of this SFU fail; a name of another SFU fails naming it; other names still pair.
    let (mut carol, ep) = signaling(&gw, "carol").await;
    let rtc = gw.gateway.rtc_addr.expect("SFU on");
    let gone = play(&mut carol, ep, &format!("nobody@{rtc}/im"))
        .await
        .err()
        .expect("unknown");
    assert_eq!(gone.code(), "NetStream.Play.Failed");
    let elsewhere = play(&mut carol, ep, "x@192.0.2.7:7103/im")
        .await
        .err()
        .expect("other node");
    assert!(
        elsewhere.description().contains("192.0.2.7:7103"),
        "{:?}",
        elsewhere.args
    );
    let paired = carol
        .call(
            ep,
            json!({"name": "play", "stream": "call@gw.example/lobby"}),
        )
        .await
        .expect("answer");
    assert_eq!(
        paired.code(),
        "NetStream.Play.PublishNotify",
        "two-player pairing is kept"
    );

    // Over WHIP and WHEP the same rights answer 403, as docs/rtc.md says (it answered 400 before).
    let http = gw.http_url();
    let (status, body, ..) =
        post_sdp(&format!("{http}/whip/stage"), "bob", &viewer_offer().await).await;
    assert_eq!(status, 403, "WHIP with only r: {body}");
    let (status, body, ..) = post_sdp(
        &format!("{http}/whep/{stream}"),
        "dave",
        &viewer_offer().await,
    )
    .await;
    assert_eq!(status, 403, "WHEP with only w: {body}");
}

/// POSTs an offer to a WHIP/WHEP endpoint: (status, answer, Location, x-odd-stream).
async fn post_sdp(url: &str, token: &str, sdp: &str) -> (u16, String, String, String) {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(sdp.to_string())
        .send()
        .await
        .expect("HTTP answer");
    let header = |h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (location, stream) = (header("location"), header("x-odd-stream"));
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"), location, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publications_play_on_signaling_pipes_and_pipe_publications_play_over_whep() {
    let gw = TestGateway::start_with(common::people).await;
    let http = gw.http_url();

    // WHIP in, signaling pipe out.
    let off = Offering::new("obs").await;
    let (status, answer, location, stream) =
        post_sdp(&format!("{http}/whip/im"), "alice", &off.offer).await;
    assert_eq!(status, 201, "{answer}");
    // Absolute (a page on another origin resolves it against the gateway, not itself), ending with the id.
    assert!(
        location.starts_with(&format!("{http}/rtc/resources/")) && location.ends_with("/obs"),
        "{location}"
    );
    assert!(
        stream.starts_with("obs@") && stream.ends_with("/im"),
        "{stream}"
    );
    let mut publisher = off.answered(&answer);
    connected(&mut publisher).await;
    publisher.stream(Duration::from_millis(20));
    let (mut bob, bp) = signaling(&gw, "bob").await;
    let (_, mut player, at) = play(&mut bob, bp, &stream).await.expect("plays");
    let key = frames(&mut player, 10).await.expect("a keyframe");
    assert!(key.saturating_duration_since(at) < KEYFRAME_BOUND);

    // Whoever holds its URL may end it; then the pipe's player is told.
    let delete = |token: &'static str| {
        let url = location.clone();
        async move {
            reqwest::Client::new()
                .delete(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("HTTP answer")
                .status()
                .as_u16()
        }
    };
    // The Location URL is the capability (its id is random), as WHIP has it: no token is checked.
    assert_eq!(delete("").await, 200);
    assert_eq!(delete("alice").await, 404, "gone");
    until(&mut bob, "Play.Stop", |r| {
        r.code() == "NetStream.Play.Stop" && r.info()["track"] == "obs-video"
    })
    .await;

    // Signaling pipe in, WHEP out.
    let (mut carol, cp) = signaling(&gw, "carol").await;
    let (stream, publisher) = publish(&mut carol, cp, "carolcam")
        .await
        .expect("published");
    publisher.stream(Duration::from_millis(20));
    let viewer = Offering::receiving().await;
    let (status, answer, _, named) =
        post_sdp(&format!("{http}/whep/{stream}"), "dave", &viewer.offer).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(named, stream);
    let mut player = viewer.answered(&answer);
    connected(&mut player).await;
    frames(&mut player, 10).await;

    // Bad input: not SDP, an unknown stream, a wrong token.
    let (status, ..) = post_sdp(
        &format!(
            "{http}/whep/nobody@{}/im",
            gw.gateway.rtc_addr.expect("SFU")
        ),
        "dave",
        &viewer_offer().await,
    )
    .await;
    assert_eq!(status, 404);
    // Bad SDPs are described in our words: no heap addresses or library debug forms (the parser's own errors
    // carried `PointerOffset(0x7f..)`).
    for bad in [
        "v=0 not really",
        "garbage",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF x\r\n",
        "v=0\r\ns=-\r\n",
    ] {
        let (status, body, ..) = post_sdp(&format!("{http}/whip/im"), "alice", bad).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        for leak in ["0x", "PointerOffset", " { ", "Error("] {
            assert!(!body.contains(leak), "{bad:?} answered {body}");
        }
    }
    let (status, ..) = post_sdp(&format!("{http}/whip/im"), "mallory", &viewer_offer().await).await;
    assert_eq!(status, 401);
}

async fn viewer_offer() -> String {
    Offering::receiving().await.offer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_publisher_connection_stops_its_players_after_the_grace_period() {
    let gw = TestGateway::start_with(|c| {
        common::people(c);
        c.limits.resume_grace_ms = 300;
    })
    .await;
    let (alice, _, stream, _publisher) = streaming(&gw, "alice", "lost").await;
    let (mut bob, _bp, _player) = watching(&gw, "bob", &stream, 5).await;
    alice.close().await;
    let got = until(&mut bob, "Play.Stop for the video track", |r| {
        r.code() == "NetStream.Play.Stop" && r.info()["track"] == "lost-video"
    })
    .await;
    assert!(got
        .iter()
        .any(|r| r.code() == "NetStream.Play.Stop" && r.info()["track"] == "lost-audio"));
    // The stream is gone: playing it again fails.
    let (mut carol, cp) = signaling(&gw, "carol").await;
    let again = play(&mut carol, cp, &stream)
        .await
        .err()
        .expect("unpublished");
    assert_eq!(again.code(), "NetStream.Play.Failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_answers_candidates_and_datagrams_get_clear_answers_and_hurt_no_one() {
    let gw = TestGateway::start_with(common::people).await;
    let (alice, ap, stream, _publisher) = streaming(&gw, "alice", "steady").await;
    let (bob, _bp, mut player) = watching(&gw, "bob", &stream, 5).await;

    let (carol, cp) = signaling(&gw, "carol").await;
    let ask = |args: Value| {
        let c = &carol;
        async move { c.call(cp, args).await.expect("an answer") }
    };
    let failed = |r: &Reply, code: &str, words: &str| {
        assert!(r.is_error(), "{:?}", r.args);
        assert_eq!(r.code(), code, "{:?}", r.args);
        assert!(r.description().contains(words), "{:?}", r.args);
    };
    failed(
        &ask(json!({"name": "sdp", "type": "offer", "sdp": "garbage"})).await,
        "NetStream.Failed",
        "bad SDP",
    );
    failed(
        &ask(json!({"name": "sdp", "type": "offer", "sdp": Offering::receiving().await.offer}))
            .await,
        "NetStream.Failed",
        "sends no audio or video",
    );
    failed(
        &ask(json!({"name": "sdp", "type": "answer", "sdp": "v=0"})).await,
        "NetStream.Play.Failed",
        "no offer",
    );
    failed(
        &ask(json!({"name": "sdp", "type": "pranswer", "sdp": "v=0"})).await,
        "NetConnection.Call.Failed",
        "offer or answer",
    );
    failed(
        &ask(json!({"name": "sdp", "type": "offer"})).await,
        "NetConnection.Call.Failed",
        "sdp",
    );
    let junk =
        ask(json!({"name": "candidate", "candidate": "candidate:junk 1 udp x y z", "sdpMid": "0"}))
            .await;
    assert!(
        !junk.is_error(),
        "an unusable candidate is dropped, as an mDNS one is: {:?}",
        junk.args
    );
    ask(json!({"name": "setProperty", "info": {"app": "a@b"}}))
        .await
        .ok()
        .expect("any property value is kept");
    failed(
        &ask(json!({"name": "sdp", "type": "offer", "sdp": Offering::new("x").await.offer})).await,
        "NetConnection.Call.Failed",
        "app",
    );
    // A publishing pipe cannot publish again or play.
    let again = alice
        .call(
            ap,
            json!({"name": "sdp", "type": "offer", "sdp": Offering::new("y").await.offer}),
        )
        .await
        .expect("answer");
    failed(&again, "NetStream.Failed", "already has a peer connection");
    let playing = alice
        .call(ap, json!({"name": "play", "stream": stream}))
        .await
        .expect("answer");
    failed(
        &playing,
        "NetStream.Play.Failed",
        "already has a peer connection",
    );

    // Junk on the media port: not WebRTC, STUN-looking, RTP-looking from an address no peer checked from.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("udp");
    let sfu = gw.gateway.rtc_addr.expect("SFU");
    for d in [
        vec![0xffu8; 40],
        vec![0u8; 20],
        vec![1, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42],
        {
            let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
            rtp.resize(200, 7);
            rtp
        },
        Vec::new(),
    ] {
        for _ in 0..50 {
            udp.send_to(&d, sfu).await.expect("sent");
        }
    }
    // The publication and its player are untouched.
    frames(&mut player, 25).await;
    assert!(!alice.is_closed() && !bob.is_closed() && !carol.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_lost_on_the_way_in_are_asked_again_and_players_miss_no_frame() {
    let gw = TestGateway::start_with(common::people).await;
    let (mut alice, ap) = signaling(&gw, "alice").await;
    let (stream, publisher) = publish(&mut alice, ap, "lossy").await.expect("published");
    let (mut bob, bp) = signaling(&gw, "bob").await;
    let (_, mut player, _) = play(&mut bob, bp, &stream).await.expect("plays");
    // One VP8 packet in ten never reaches the gateway; it NACKs them and the publisher resends (RTX).
    publisher.lose_every(10);
    publisher.stream(Duration::from_millis(20));
    // Every one of the first 150 frames arrives (a repaired one may come after later ones).
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while (0..150u32).any(|i| !seen.contains(&i)) {
        let s = tokio::time::timeout_at(deadline, player.seen.recv())
            .await
            .unwrap_or_else(|_| {
                let missing: Vec<u32> = (0..150).filter(|i| !seen.contains(i)).collect();
                panic!("frames never delivered within {WAIT:?}: {missing:?}")
            })
            .expect("the player runs");
        if let Seen::Frame {
            kind: MediaKind::Video,
            data,
            keyframe,
        } = s
        {
            let at = if keyframe { 10 } else { 3 };
            seen.insert(u32::from_be_bytes(
                data[at..at + 4].try_into().expect("4 bytes"),
            ));
        }
    }
    let nacks = r#"odd_gateway_rtc_nacks_total{dir="sent"}"#;
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let n = common::metric_at(&gw.http_url(), nacks)
            .await
            .unwrap_or(0.0);
        if n > 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the gateway's NACKs are counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_never_connects_is_dropped_and_told() {
    let gw = TestGateway::start_with(|c| {
        common::people(c);
        c.rtc.connect_timeout_ms = 1_000;
    })
    .await;
    let (mut alice, ap) = signaling(&gw, "alice").await;
    let off = Offering::new("ghost").await;
    tell(
        &alice,
        ap,
        json!({"name": "sdp", "type": "offer", "sdp": off.offer}),
    )
    .await;
    // The offer is answered, but this publisher never checks connectivity (its peer is never started).
    let got = until(&mut alice, "NetStream.Failed", |p| {
        p.code() == "NetStream.Failed"
    })
    .await;
    assert!(got.iter().any(|p| p.code() == "NetStream.Publish.Start"));
    let failed = got.last().expect("a push");
    assert!(
        failed.is_error() && failed.description().contains("did not complete"),
        "{:?}",
        failed.args
    );
    let stream = got
        .iter()
        .find(|p| p.code() == "NetStream.Publish.Start")
        .map(|p| p.info()["stream"].as_str().unwrap_or_default().to_string())
        .expect("named");
    let (mut bob, bp) = signaling(&gw, "bob").await;
    let gone = play(&mut bob, bp, &stream).await.err().expect("dropped");
    assert_eq!(gone.code(), "NetStream.Play.Failed");
    let failures = common::metric_at(
        &gw.http_url(),
        r#"odd_gateway_rtc_failures_total{stage="connect"}"#,
    )
    .await;
    assert_eq!(failures, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_play_and_stop_on_the_publisher_ends_the_publication() {
    let gw = TestGateway::start_with(common::people).await;
    let (alice, ap, stream, _publisher) = streaming(&gw, "alice", "stopme").await;
    let (mut bob, bp, _bob_peer) = watching(&gw, "bob", &stream, 3).await;
    let (mut carol, _cp, mut carol_peer) = watching(&gw, "carol", &stream, 3).await;

    // ns.stop() on a player: answered Play.Stop, its peer connection ends, the publication goes on.
    let stopped = bob
        .call(bp, json!({"name": "stop", "stream": stream}))
        .await
        .expect("answer")
        .ok()
        .expect("stopped");
    assert_eq!(stopped.code(), "NetStream.Play.Stop");
    assert_eq!(stopped.info()["stream"], stream);
    frames(&mut carol_peer, 10).await;
    let players = r#"odd_gateway_rtc_players"#;
    assert!(
        common::until_metric(&gw.http_url(), players, 1.0, WAIT).await,
        "one player left"
    );
    // The pipe is free again: it may play once more.
    let (_, mut again, _) = play(&mut bob, bp, &stream).await.expect("plays again");
    frames(&mut again, 3).await;

    // stop on the publisher's pipe ends the publication: its players are told.
    alice
        .call(ap, json!({"name": "stop", "stream": stream}))
        .await
        .expect("answer")
        .ok()
        .expect("stopped");
    for c in [&mut bob, &mut carol] {
        until(c, "Play.Stop", |r| {
            r.code() == "NetStream.Play.Stop" && r.info()["track"] == "stopme-video"
        })
        .await;
    }
    assert!(common::until_metric(&gw.http_url(), "odd_gateway_rtc_publications", 0.0, WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_player_on_a_port_an_older_one_used_connects_and_the_older_one_ends() {
    let gw = TestGateway::start_with(common::people).await;
    let (_alice, _, stream, _publisher) = streaming(&gw, "alice", "reuse").await;
    let (mut bob, _bp, old) = watching(&gw, "bob", &stream, 3).await;
    // Bob's browser goes away without a word (its signaling connection stays, so its peer connection on
    // the gateway lives on); carol's gets the very same UDP port from the OS.
    let port = old.addr;
    drop(old);
    // Its task lets the socket go on its next turn: the port is free once binding it succeeds.
    let deadline = tokio::time::Instant::now() + WAIT;
    let socket = loop {
        match tokio::net::UdpSocket::bind(port).await {
            Ok(s) => break s,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "{port} still taken: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (mut carol, cp) = signaling(&gw, "carol").await;
    tell(&carol, cp, json!({"name": "play", "stream": stream})).await;
    let got = until(&mut carol, "the gateway's offer", |p| p.name() == "sdp").await;
    let offer = got.last().expect("offer").args["sdp"]
        .as_str()
        .expect("sdp")
        .to_string();
    let (mut new, answer) = Peer::answer_on(&offer, socket).await;
    assert_eq!(new.addr, port);
    tell(
        &carol,
        cp,
        json!({"name": "sdp", "type": "answer", "sdp": answer}),
    )
    .await;
    connected(&mut new).await;
    frames(&mut new, 10).await;
    // The older peer connection, whose address this now is, ends; bob's pipe is told why.
    let failed = until(&mut bob, "NetStream.Failed", |p| {
        p.code() == "NetStream.Failed"
    })
    .await;
    let last = failed.last().expect("a push");
    assert!(
        last.description().contains("another peer connection"),
        "{:?}",
        last.args
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_publications_are_forwarded_as_well() {
    let gw = TestGateway::start_with(common::people).await;
    let (mut alice, ap) = signaling(&gw, "alice").await;
    let (stream, publisher) = publish(&mut alice, ap, "h264cam").await.expect("published");
    publisher.use_h264();
    let (mut bob, bp) = signaling(&gw, "bob").await;
    let (offer, mut player, _) = play(&mut bob, bp, &stream).await.expect("plays");
    assert!(
        offer.contains("H264/90000"),
        "the gateway offers H264: {offer}"
    );
    publisher.stream(Duration::from_millis(20));
    let (mut video, mut keyframes) = (0, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while video < 25 {
        let s = tokio::time::timeout_at(deadline, player.seen.recv())
            .await
            .unwrap_or_else(|_| panic!("25 H264 frames within {WAIT:?}, got {video}"))
            .expect("the player runs");
        if let Seen::Frame {
            kind: MediaKind::Video,
            data,
            keyframe,
        } = s
        {
            // Whatever start code the depacketizer puts back (3 or 4 bytes), the NAL unit is the publisher's.
            let nal = data
                .strip_prefix(&[0, 0, 0, 1][..])
                .or_else(|| data.strip_prefix(&[0, 0, 1][..]))
                .expect("an Annex B start code");
            let n: u32 = std::str::from_utf8(&nal[1..9])
                .expect("digits")
                .parse()
                .expect("a frame number");
            assert_eq!(
                nal,
                &webrtc::h264_frame(n, keyframe)[4..],
                "H264 frame {n} unchanged"
            );
            keyframes += usize::from(keyframe);
            video += 1;
        }
    }
    assert!(keyframes >= 1, "an IDR frame came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publications_per_user_are_limited_and_freed_by_delete() {
    let gw = TestGateway::start_with(|c| {
        common::people(c);
        c.rtc.max_publications_per_connection = 1;
    })
    .await;
    let url = format!("{}/whip/im", gw.http_url());
    let (status, _, location, _) = post_sdp(&url, "alice", &Offering::new("one").await.offer).await;
    assert_eq!(status, 201);
    let (status, body, ..) = post_sdp(&url, "alice", &Offering::new("two").await.offer).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("at most 1"), "{body}");
    let (status, ..) = post_sdp(&url, "bob", &Offering::new("three").await.offer).await;
    assert_eq!(status, 201, "the limit is per user");
    let deleted = reqwest::Client::new()
        .delete(&location)
        .bearer_auth("alice")
        .send()
        .await
        .expect("HTTP answer")
        .status()
        .as_u16();
    assert_eq!(deleted, 200);
    let (status, ..) = post_sdp(&url, "alice", &Offering::new("four").await.offer).await;
    assert_eq!(status, 201, "freed by DELETE");
    // Resource ids are random: the Location URL is the capability.
    let number = location
        .rsplit('/')
        .nth(1)
        .expect("/rtc/resources/<number>/<id>");
    assert!(number.len() > 6, "{location}");
}

/// Guests (each request a new one) are held to the per-user limits by address, and whoever holds a
/// resource's Location URL may DELETE it, a guest included (before, every guest request was "not your
/// resource", and 2,000 anonymous publications were accepted in 3.7 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_whip_is_bounded_per_address_and_deletable_by_its_url() {
    let gw = TestGateway::start_with(|c| c.rtc.max_publications_per_connection = 2).await;
    let url = format!("{}/whip/im", gw.http_url());
    let guest = |sdp: String| {
        let url = url.clone();
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/sdp")
                .body(sdp)
                .send()
                .await
                .expect("HTTP answer");
            let location = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (r.status().as_u16(), location)
        }
    };
    let (first, location) = guest(Offering::new("g1").await.offer).await;
    let (second, _) = guest(Offering::new("g2").await.offer).await;
    let (third, _) = guest(Offering::new("g3").await.offer).await;
    assert_eq!((first, second, third), (201, 201, 403));
    let deleted = reqwest::Client::new()
        .delete(&location)
        .send()
        .await
        .expect("HTTP answer")
        .status()
        .as_u16();
    assert_eq!(deleted, 200, "the URL is enough");
    let (again, _) = guest(Offering::new("g4").await.offer).await;
    assert_eq!(again, 201, "freed by DELETE");
    let unknown = reqwest::Client::new()
        .delete(format!("{}/rtc/resources/12345", gw.http_url()))
        .send()
        .await
        .expect("HTTP answer")
        .status()
        .as_u16();
    assert_eq!(unknown, 404);
}

/// Peers that vanish without `DELETE` or `release` (a closed tab, a killed app) are reaped once their consent
/// runs out (`rtc.consent_timeout_ms`): the publication and its player leave the metrics. Before, they stayed
/// for good: the gateway is ICE lite, so nothing of str0m's ever timed them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_peers_are_reaped_when_their_consent_expires() {
    let gw = TestGateway::start_with(|c| {
        common::people(c);
        c.rtc.consent_timeout_ms = 1_500;
    })
    .await;
    let http = gw.http_url();
    // Bob's signaling connection stays: only the peers vanish.
    let Watched {
        publisher,
        bob: _bob,
        mut player,
        ..
    } = whip_watched_by_bob(&gw, "gone").await;
    frames(&mut player, 5).await;
    let gauges = |http: String| async move {
        (
            common::metric_at(&http, "odd_gateway_rtc_publications").await,
            common::metric_at(&http, "odd_gateway_rtc_players").await,
        )
    };
    assert_eq!(gauges(http.clone()).await, (Some(1.0), Some(1.0)));
    // Both ends vanish: no DELETE, no release, not another datagram.
    let gone = Instant::now();
    drop(publisher);
    drop(player);
    let deadline = gone + Duration::from_secs(10);
    while gauges(http.clone()).await != (Some(0.0), Some(0.0)) {
        assert!(
            Instant::now() < deadline,
            "still counted: {:?}",
            gauges(http.clone()).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = gone.elapsed();
    eprintln!("vanished peers left the metrics after {took:?} (consent timeout 1.5 s)");
    assert!(
        took >= Duration::from_millis(1_400),
        "reaped before the consent ran out: {took:?}"
    );
}

/// Candidates past the 32 a peer connection takes are refused with a reason, not answered "candidate added"
/// and dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_past_the_limit_are_refused() {
    let gw = TestGateway::start_with(common::people).await;
    let (carol, cp) = signaling(&gw, "carol").await;
    for n in 0..40u16 {
        let c = format!(
            "candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host",
            40000 + n
        );
        let r = carol
            .call(
                cp,
                json!({"name": "candidate", "candidate": c, "sdpMid": "0", "sdpMLineIndex": 0}),
            )
            .await
            .expect("an answer");
        if n < 32 {
            assert!(!r.is_error(), "candidate {n}: {:?}", r.args);
        } else {
            assert!(r.is_error(), "candidate {n} was accepted: {:?}", r.args);
            assert!(r.description().contains("at most 32"), "{:?}", r.args);
        }
    }
}

/// The operator's view of the SFU (`GET /api/server/media`, the admin console's media page) lists a WHIP
/// publication and a signaling-pipe player with their state, and `POST /api/server/media/end` ends one: the
/// player's pipe is told `NetStream.Failed`, the publication's end empties the list. Needs the API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_api_lists_publishers_and_players_and_ends_them() {
    const KEY: &str = "k-operator-0123456789";
    let gw = TestGateway::start_with(|c| {
        common::people(c);
        common::api_key(c, "ops", KEY);
    })
    .await;
    let http = gw.http_url();
    let media = || async {
        let (status, answer) =
            common::server_call(&http, Method::GET, "/api/server/media", Some(KEY), None).await;
        assert_eq!(status, 200);
        answer["peers"].as_array().cloned().unwrap_or_default()
    };
    let end = |id: Value| {
        let body = json!({ "id": id });
        let http = http.clone();
        async move {
            let path = "/api/server/media/end";
            common::server_call(&http, Method::POST, path, Some(KEY), Some(&body))
                .await
                .0
        }
    };
    assert!(media().await.is_empty(), "nothing before");

    let Watched {
        publisher: _publisher,
        mut bob,
        mut player,
        stream,
    } = whip_watched_by_bob(&gw, "cam").await;
    frames(&mut player, 3).await.expect("a keyframe");

    let peers = media().await;
    assert_eq!(peers.len(), 2, "{peers:?}");
    let (p, q) = (&peers[0], &peers[1]);
    assert_eq!(
        (p["role"].as_str(), p["via"].as_str(), p["stream"].as_str()),
        (Some("publisher"), Some("whip"), Some(stream.as_str())),
        "{p}"
    );
    assert_eq!(
        (q["role"].as_str(), q["via"].as_str(), q["stream"].as_str()),
        (Some("player"), Some("signaling"), Some(stream.as_str())),
        "{q}"
    );
    assert_eq!(p["connected"], true);
    assert_eq!(q["connected"], true);

    // Without the key: refused. A made-up id: 400; a well-formed one that is not there: 404.
    let (status, _) =
        common::server_call(&http, Method::GET, "/api/server/media", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(end(json!("../1")).await, 400);
    assert_eq!(end(json!("http-000000000000000000000000")).await, 404);

    // Ending the player: its pipe hears why.
    assert_eq!(end(q["id"].clone()).await, 200);
    let got = until(&mut bob, "the player's failure", |p| {
        p.code() == "NetStream.Failed"
    })
    .await;
    let failed = got.last().expect("a push");
    assert!(
        failed.description().contains("ended by the server"),
        "{failed:?}"
    );
    // Ending the publication leaves nothing (the SFU's task applies the end before it answers).
    assert_eq!(end(p["id"].clone()).await, 200);
    assert_eq!(media().await, Vec::<Value>::new());
    assert_eq!(end(p["id"].clone()).await, 404, "already ended");
}

/// What a web page with odd.js v2.5.08+ does, from another origin than the gateway's (its default WHIP and
/// WHEP URLs are `/whip/live` and `/whep/live`): publish over WHIP as a guest, name the stream by the last
/// segment of `Location` (its `Publish.Start` says so), play at `{whep}/{that id}`, `DELETE` the `Location`
/// it was given. Each call is cross-origin, so each needs its preflight and CORS answer, `Location` must be
/// readable by the page (exposed) and absolute (a relative one is resolved against the page's own origin).
/// Before, the preflight got 405 and Chromium refused the POST (seen with the real SDK: docs/rtc.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_on_another_origin_publishes_plays_by_the_id_and_ends_over_whip_and_whep() {
    let gw = TestGateway::start_with(|c| c.cors.origins = vec!["http://app.example".into()]).await;
    let http = gw.http_url();
    let page = "http://app.example";
    let web = reqwest::Client::new();
    let acao = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let preflight = |url: String, origin: &'static str, method: &'static str| {
        let web = web.clone();
        async move {
            web.request(Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", method)
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .expect("HTTP answer")
        }
    };
    let pre = preflight(format!("{http}/whip/live"), page, "POST").await;
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(acao(&pre).as_deref(), Some(page));
    let allowed = pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap_or("");
    assert!(
        allowed.contains("POST") && allowed.contains("DELETE"),
        "{allowed}"
    );
    // Another site gets no CORS answer, and the server API answers no page at all.
    let evil = preflight(format!("{http}/whip/live"), "http://evil.example", "POST").await;
    assert_eq!(acao(&evil), None);
    let api = preflight(format!("{http}/api/server/rooms"), page, "GET").await;
    assert_eq!(acao(&api), None, "the server API is not for web pages");

    // Publish as the SDK does: no token (a guest), the offer as application/sdp.
    // An offer POSTed from the page, as the SDK's XMLHttpRequest does.
    let from_page = |url: String, sdp: String| {
        let web = web.clone();
        async move {
            web.post(url)
                .header("origin", page)
                .header("content-type", "application/sdp")
                .body(sdp)
                .send()
                .await
                .expect("HTTP answer")
        }
    };
    let off = Offering::new("f7033d8b-0757-4914-9a5e-ef12bb3414d1").await;
    let r = from_page(format!("{http}/whip/live"), off.offer.clone()).await;
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(acao(&r).as_deref(), Some(page));
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(exposed.contains("location"), "{exposed}");
    let location = r.headers()["location"].to_str().unwrap_or("").to_string();
    assert!(
        location.starts_with(&format!("{http}/rtc/resources/")),
        "{location}"
    );
    // The SDK's `@id`: what its Publish.Start calls the stream, and what it plays.
    let id = location.rsplit('/').next().unwrap_or("").to_string();
    assert_eq!(id, "f7033d8b-0757-4914-9a5e-ef12bb3414d1");
    let mut publisher = off.answered(&r.text().await.expect("answer"));
    connected(&mut publisher).await;
    publisher.stream(Duration::from_millis(20));

    // Play at `{whep}/{id}`, percent-encoded as the SDK does.
    let viewer = Offering::receiving().await;
    let r = from_page(format!("{http}/whep/live/{id}"), viewer.offer.clone()).await;
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(acao(&r).as_deref(), Some(page));
    let played = r.headers()["x-odd-stream"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(
        played.starts_with(&format!("{id}@")) && played.ends_with("/live"),
        "{played}"
    );
    let mut player = viewer.answered(&r.text().await.expect("answer"));
    connected(&mut player).await;
    assert!(
        frames(&mut player, 10).await.is_some(),
        "the player gets frames"
    );
    // An id no publication has: 404, in words.
    let r = web
        .post(format!("{http}/whep/live/nobody"))
        .header("content-type", "application/sdp")
        .body(viewer_offer().await)
        .send()
        .await
        .expect("HTTP answer");
    assert_eq!(r.status().as_u16(), 404);
    let body = r.text().await.unwrap_or_default();
    assert!(
        body.contains("nobody@") && body.contains("not published"),
        "{body}"
    );

    // End it at the URL it was given, from the page.
    let pre = preflight(location.clone(), page, "DELETE").await;
    assert_eq!(acao(&pre).as_deref(), Some(page));
    let r = web
        .delete(&location)
        .header("origin", page)
        .send()
        .await
        .expect("HTTP answer");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(acao(&r).as_deref(), Some(page));
    let gone = web.delete(&location).send().await.expect("HTTP answer");
    assert_eq!(gone.status().as_u16(), 404, "ended");

    // A listed set also decides which pages open the WebSocket (compared as browsers send origins); a
    // client that is not a browser sends no Origin.
    let http_addr = gw.gateway.http_addr.expect("http");
    for (origin, status) in [
        (Some("http://evil.example"), "403"),
        (Some("HTTP://App.Example:80"), "101"),
        (None, "101"),
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(http_addr)
            .await
            .expect("connect");
        let origin_line = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET /im HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin_line}\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("upgrade");
        let mut head = [0u8; 512];
        let n = s.read(&mut head).await.expect("answer");
        let line = String::from_utf8_lossy(&head[..n]);
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status}")),
            "{origin:?}: {line}"
        );
    }
}
