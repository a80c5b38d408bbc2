//! The SFU's socket, and what could not be sent on it yet.
//!
//! Peers are polled synchronously, so a datagram they produce is sent with `try_send_to`. When the kernel's
//! send buffer is full (a burst to hundreds of players), the datagram waits here, in order, and goes out as
//! soon as the socket is writable again: dropping it instead would lose a DTLS handshake's last flight (which
//! nobody resends until the browser's own timer, a second or more later) as readily as a media packet.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::metrics::Metrics;

/// Datagrams kept while the socket is full; beyond this they are dropped (and counted).
const BACKLOG: usize = 8192;

pub(super) struct Outgoing {
    pub socket: tokio::net::UdpSocket,
    backlog: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Outgoing {
    pub fn new(socket: tokio::net::UdpSocket) -> Outgoing {
        Outgoing {
            socket,
            backlog: VecDeque::new(),
        }
    }

    /// Sends now, or after what is already waiting.
    pub fn send(&mut self, to: SocketAddr, datagram: &[u8], metrics: &Metrics) {
        if self.backlog.is_empty() {
            match self.socket.try_send_to(datagram, to) {
                Ok(n) => return metrics.rtc_datagram_out(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    return metrics
                        .rtc_failures_total
                        .with_label_values(&["send"])
                        .inc()
                }
            }
        }
        if self.backlog.len() < BACKLOG {
            self.backlog.push_back((to, datagram.to_vec()));
        } else {
            metrics
                .rtc_failures_total
                .with_label_values(&["send"])
                .inc();
        }
    }

    pub fn is_waiting(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Sends what waited, in order, until the socket is full again.
    pub fn flush(&mut self, metrics: &Metrics) {
        while let Some((to, d)) = self.backlog.front() {
            match self.socket.try_send_to(d, *to) {
                Ok(n) => metrics.rtc_datagram_out(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => metrics
                    .rtc_failures_total
                    .with_label_values(&["send"])
                    .inc(),
            }
            self.backlog.pop_front();
        }
    }
}
