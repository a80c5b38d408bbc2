//! Which peer connection a STUN check is for: the local part of its USERNAME (`<our ufrag>:<theirs>`).
//!
//! str0m's own `Rtc::accepts` takes anything from the address it sends to, STUN included, so a check from an
//! address an older peer connection used (a port reused by the browser's OS, a NAT mapping recycled) would
//! go to the older one and the new connection would never come up. Routing checks by their ufrag instead is
//! exact, and costs one map lookup instead of asking every peer.

/// The USERNAME attribute's part before `:` of a STUN message (`None` for anything else).
pub(super) fn local_ufrag(d: &[u8]) -> Option<&str> {
    // Header: type (2), length (2), magic cookie (4), transaction id (12). First byte 0-3: STUN (RFC 7983).
    if d.len() < 20 || d[0] >= 4 || d[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let body = d.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[i], body[i + 1]]);
        let l = usize::from(u16::from_be_bytes([body[i + 2], body[i + 3]]));
        let value = body.get(i + 4..i + 4 + l)?;
        if kind == 0x0006 {
            return std::str::from_utf8(value).ok()?.split(':').next();
        }
        i += 4 + ((l + 3) & !3);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, v) in attrs {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(v.len() as u16).to_be_bytes());
            body.extend_from_slice(v);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn finds_the_local_ufrag_and_nothing_in_junk() {
        let m = message(&[(0x0024, &[0, 0, 0, 1]), (0x0006, b"gwfrag:browserfrag")]);
        assert_eq!(local_ufrag(&m), Some("gwfrag"));
        assert_eq!(local_ufrag(&message(&[(0x0024, &[0; 4])])), None);
        assert_eq!(local_ufrag(&m[..30]), None, "truncated");
        let mut bad = m.clone();
        bad[4] = 0;
        assert_eq!(local_ufrag(&bad), None, "no magic cookie");
        assert_eq!(local_ufrag(&[0x80; 40]), None, "RTP");
        let mut long = m.clone();
        long[3] = 0xff;
        assert_eq!(local_ufrag(&long), None, "length past the end");
    }
}
