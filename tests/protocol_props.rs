//! Property tests for the pure protocol layer: round trips, and arbitrary bytes never panic.

use bytes::Bytes;
use odd_gateway::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler, Request};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = MessageType> {
    prop_oneof![
        Just(MessageType::Abort),
        Just(MessageType::AckWindowSize),
        Just(MessageType::Ack),
        Just(MessageType::Command),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn frame_round_trip(fin: bool, k in kind(), seq: u16, pipe: u16, payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let f = Frame { fin, kind: k, seq: 0, pipe, payload: Bytes::from(payload) };
        let decoded = Frame::decode(f.to_bytes(seq)).expect("valid frames decode");
        prop_assert_eq!(decoded.seq, seq);
        prop_assert_eq!(Frame { seq: 0, ..decoded }, f);
    }

    #[test]
    fn command_round_trip(ts: u32, txid: u16, args in "[ -~]{0,300}", payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let b = CommandMessage::encode(ts, txid, args.as_bytes(), &payload).expect("fits");
        let c = CommandMessage::decode(3, b).expect("decodes");
        prop_assert_eq!(c.timestamp, ts);
        prop_assert_eq!(c.txid, txid);
        prop_assert_eq!(&c.args[..], args.as_bytes());
        prop_assert_eq!(&c.payload[..], &payload[..]);
    }

    #[test]
    fn fragmentation_is_transparent(cuts in proptest::collection::vec(1usize..50, 0..20), payload in proptest::collection::vec(any::<u8>(), 0..400)) {
        let body = CommandMessage::encode(1, 9, br#"{"name":"send"}"#, &payload).expect("fits");
        let mut r = Reassembler::new(1 << 20);
        let mut rest = body.clone();
        let mut out = None;
        for c in cuts {
            if rest.len() <= c { break; }
            let head = rest.split_to(c);
            prop_assert_eq!(r.push(Frame { fin: false, kind: MessageType::Command, seq: 0, pipe: 5, payload: head }), Ok(None));
        }
        if let Ok(Some(Message::Command { command, .. })) = r.push(Frame { fin: true, kind: MessageType::Command, seq: 0, pipe: 5, payload: rest }) {
            out = Some(command);
        }
        let c = out.expect("a whole command");
        prop_assert_eq!(c.to_bytes().expect("fits"), body);
        prop_assert_eq!(r.buffered(), 0);
    }
}

proptest! {
    // The issue asks for 10,000 random byte strings thrown at the decoder.
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn arbitrary_bytes_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..6)) {
        let mut r = Reassembler::new(256);
        for bytes in frames {
            if let Ok(frame) = Frame::decode(Bytes::from(bytes)) {
                if let Ok(Some(Message::Command { command, .. })) = r.push(frame) {
                    let _ = Request::parse(&command.args);
                }
            }
        }
        prop_assert!(r.buffered() <= 512);
    }

    #[test]
    fn arbitrary_json_args_never_panic(name in "(connect|create|release|join|leave|send|chmod|history|read|redact|setProperty|getProperty|play|stop|sdp|candidate|[a-z]{0,8})",
                                       field in "[a-zA-Z]{1,8}", value in prop_oneof![Just("null".to_string()), Just("[]".to_string()), Just("{}".to_string()), "-?[0-9]{1,25}", "\"[ -~]{0,12}\"", Just("true".to_string())]) {
        let args = format!(r#"{{"name":"{name}","{field}":{value},"rid":{value},"id":{value},"kind":{value},"mask":{value},"query":{value},"mid":{value}}}"#);
        let _ = Request::parse(args.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// Any query text is either refused or parsed into terms the store can use: at least one, each with
    /// words of letters, digits and the combining marks that belong to them (no ASCII punctuation, quote,
    /// operator or space: what both backends' query literals are built from), never a panic.
    #[test]
    fn search_queries_parse_or_are_refused(q in "[ a-zA-Z0-9\"*'\\\\&|!():<>\\-é日本\u{301}]{0,300}") {
        if let Ok(terms) = odd_gateway::archive::parse_query(&q) {
            prop_assert!(!terms.is_empty() && terms.len() <= 16);
            for t in &terms {
                prop_assert!(!t.words.is_empty() && t.words.len() <= 16);
                for w in &t.words {
                    prop_assert!(
                        !w.is_empty()
                            && w.chars().all(|c| c.is_alphanumeric() || !(c.is_ascii() || c.is_whitespace())),
                        "{w:?}"
                    );
                }
            }
        }
    }

    /// Any JSON a client may store yields words without a panic, at most the indexed maximum.
    #[test]
    fn message_words_never_panic(data in "[\\[\\]{}\",:a-z0-9 \\\\u]{0,200}") {
        let words = odd_gateway::archive::message_words(&data);
        prop_assert!(words.len() <= 4096);
    }
}
