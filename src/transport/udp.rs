//! A UDP socket with a large receive buffer, for QUIC and the SFU's media port.

use std::net::SocketAddr;

/// Binds `addr` with its receive buffer asked to hold `recv_buffer` bytes (0: the OS default): a burst of
/// handshakes (a thousand phones reconnecting at once, a hundred players joining a stream) must not overflow
/// it, or the kernel drops datagrams and handshakes stall. The OS may grant less (Linux caps at
/// `net.core.rmem_max`); that is logged with the figure to raise.
pub fn bind(
    addr: SocketAddr,
    recv_buffer: usize,
    what: &str,
) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    if recv_buffer > 0 {
        let _ = socket.set_recv_buffer_size(recv_buffer);
        // Linux reports twice what it granted (the doubling covers its bookkeeping).
        let granted = socket.recv_buffer_size().unwrap_or(0) / 2;
        if granted < recv_buffer {
            tracing::warn!(
                requested = recv_buffer,
                granted,
                "the OS capped the {what} UDP receive buffer; raise net.core.rmem_max to at least the requested size"
            );
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
