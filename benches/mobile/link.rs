//! The emulated mobile link: a userspace relay of IP packets between two TUN devices, one in the gateway's
//! network namespace and one in the phone's, applying per direction a one-way delay (with optional jitter),
//! random loss, a rate limit (serialization delay behind a drop-tail queue), blackouts, and the NAT
//! rebinding an OS does not report (`silent_rebind`).
//!
//! Self-contained (std, libc, rand) so `tests/mobile.rs` can `#[path]`-include it. Each direction has a reader
//! thread (poll + read of the source TUN, then loss, queue, NAT) and a writer thread (the delay line: writes each
//! packet to the other TUN when it is due). Packets keep their order (jitter never reorders, as on a real
//! cellular bearer). Only IPv4 packets between addresses of 198.18.0.0/24 are relayed; anything else is dropped.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The benchmarking range both ends live in (RFC 2544): 198.18.0.0/24.
pub const NET: [u8; 3] = [198, 18, 0];
/// External ports a silent rebinding hands out: above the phone's ephemeral range, so never a real socket's.
const FIRST_NAT_PORT: u16 = 61_000;

/// What one direction of the link does to packets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shape {
    /// One-way delay (half the round trip).
    pub delay: Duration,
    /// Each packet's delay is `delay` plus or minus up to this, uniformly (order is kept).
    pub jitter: Duration,
    /// Probability of dropping each packet, 0..1.
    pub loss: f64,
    /// Bits per second; 0: no rate limit.
    pub rate_bps: u64,
    /// Packets the bottleneck queue holds (the one being serialized included); more are dropped (drop-tail).
    pub queue: usize,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub relayed: u64,
    pub bytes: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub blackout_drops: u64,
    pub nat_drops: u64,
    pub rewritten: u64,
    pub foreign_drops: u64,
}

#[derive(Default)]
struct Counters {
    relayed: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    queue_drops: AtomicU64,
    blackout_drops: AtomicU64,
    nat_drops: AtomicU64,
    rewritten: AtomicU64,
    foreign_drops: AtomicU64,
}

/// A flow as the NAT sees it: protocol, the phone's address and port, the gateway's port.
type Flow = (u8, [u8; 4], u16, u16);

/// The state of the NAT the phone sits behind.
#[derive(Default)]
struct Nat {
    /// Every flow seen; for UDP, the external port it now has (if a silent rebinding moved it).
    flows: HashMap<Flow, Option<u16>>,
    /// TCP flows that existed at a silent rebinding: black-holed both ways from then on.
    dead: std::collections::HashSet<Flow>,
    /// (external port, gateway port) -> (phone address, phone port), for the way back.
    back: HashMap<(u16, u16), ([u8; 4], u16)>,
    next_port: u16,
}

struct Shared {
    shapes: Mutex<[Shape; 2]>,
    blackout_until: Mutex<Option<Instant>>,
    nat: Mutex<Nat>,
    stop: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn blacked_out(&self, at: Instant) -> bool {
        self.blackout_until
            .lock()
            .map(|b| b.is_some_and(|until| at < until))
            .unwrap_or(false)
    }
}

/// Direction index: 0 = phone -> gateway (up), 1 = gateway -> phone (down).
const UP: usize = 0;
const DOWN: usize = 1;

/// The running relay; stops (and joins its threads) on drop.
pub struct Link {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Creates TUN device `name` (IFF_TUN | IFF_NO_PI) inside network namespace `netns` (a name under
/// /var/run/netns): a thread enters the namespace, opens /dev/net/tun there, and hands the file back. The device
/// belongs to that namespace and lives as long as the file is open.
pub fn open_tun(netns: &str, name: &str) -> std::io::Result<File> {
    let (netns, name) = (netns.to_string(), name.to_string());
    std::thread::spawn(move || -> std::io::Result<File> {
        let ns = File::open(format!("/var/run/netns/{netns}"))?;
        // SAFETY: setns on this thread only, with a namespace file we hold open.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let tun = File::options()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        #[repr(C)]
        struct IfReq {
            name: [u8; 16],
            flags: libc::c_short,
            pad: [u8; 22],
        }
        let mut req = IfReq {
            name: [0; 16],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            pad: [0; 22],
        };
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > 15 {
            return Err(std::io::Error::other("interface name must be 1-15 bytes"));
        }
        req.name[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `IfReq` lays out (40 bytes).
        if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(tun)
    })
    .join()
    .map_err(|_| std::io::Error::other("the TUN thread panicked"))?
}

impl Link {
    /// Starts relaying between the gateway's TUN and the phone's, with no impairment.
    pub fn start(gateway: File, phone: File) -> std::io::Result<Link> {
        let shared = Arc::new(Shared {
            shapes: Mutex::new([Shape::default(); 2]),
            blackout_until: Mutex::new(None),
            nat: Mutex::new(Nat {
                next_port: FIRST_NAT_PORT,
                ..Nat::default()
            }),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let mut threads = Vec::new();
        for (dir, from, to) in [
            (UP, phone.try_clone()?, gateway.try_clone()?),
            (DOWN, gateway, phone),
        ] {
            let line = Arc::new((Mutex::new(VecDeque::new()), Condvar::new()));
            let (s, l) = (shared.clone(), line.clone());
            threads.push(std::thread::spawn(move || read_side(dir, from, &s, &l)));
            let s = shared.clone();
            threads.push(std::thread::spawn(move || write_side(to, &s, &line)));
        }
        Ok(Link { shared, threads })
    }

    /// Sets both directions' shape.
    pub fn shape(&self, shape: Shape) {
        if let Ok(mut s) = self.shared.shapes.lock() {
            *s = [shape; 2];
        }
    }

    /// Drops every packet, both ways (those already on the wire included), for `length` from now.
    pub fn blackout(&self, length: Duration) {
        if let Ok(mut b) = self.shared.blackout_until.lock() {
            *b = Some(Instant::now() + length);
        }
    }

    /// The phone's NAT rebinds without the phone knowing: from now on every TCP flow seen so far is
    /// black-holed both ways, and every UDP flow seen so far leaves with a new source port (rewritten back on
    /// the way in; the old port is forgotten). Returns (TCP flows black-holed, UDP flows moved).
    pub fn silent_rebind(&self) -> (usize, usize) {
        let Ok(mut nat) = self.shared.nat.lock() else {
            return (0, 0);
        };
        let nat = &mut *nat;
        let (mut tcp, mut udp) = (0, 0);
        let flows: Vec<Flow> = nat.flows.keys().copied().collect();
        for flow in flows {
            if flow.0 == 6 {
                tcp += usize::from(nat.dead.insert(flow));
                continue;
            }
            let port = nat.next_port;
            nat.next_port = nat.next_port.checked_add(1).unwrap_or(FIRST_NAT_PORT);
            if let Some(Some(old)) = nat.flows.insert(flow, Some(port)) {
                nat.back.remove(&(old, flow.3));
            }
            nat.back.insert((port, flow.3), (flow.1, flow.2));
            udp += 1;
        }
        (tcp, udp)
    }

    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            relayed: get(&c.relayed),
            bytes: get(&c.bytes),
            lost: get(&c.lost),
            queue_drops: get(&c.queue_drops),
            blackout_drops: get(&c.blackout_drops),
            nat_drops: get(&c.nat_drops),
            rewritten: get(&c.rewritten),
            foreign_drops: get(&c.foreign_drops),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

type Line = Arc<(Mutex<VecDeque<(Instant, Vec<u8>)>>, Condvar)>;

/// Reads packets from one TUN, applies loss, the queue and the NAT, and puts survivors on the delay line.
fn read_side(dir: usize, mut from: File, shared: &Shared, line: &Line) {
    let c = &shared.counters;
    let mut buf = vec![0u8; 65_536];
    let (mut busy_until, mut last_due) = (Instant::now(), Instant::now());
    let mut backlog: VecDeque<Instant> = VecDeque::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, valid for the call.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut packet = buf[..n].to_vec();
        let now = Instant::now();
        if !ours(&packet) {
            c.foreign_drops.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if shared.blacked_out(now) {
            c.blackout_drops.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let pass = match shared.nat.lock() {
            Ok(mut nat) => translate(&mut nat, dir, &mut packet, c),
            Err(_) => true,
        };
        if !pass {
            c.nat_drops.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let shape = shared.shapes.lock().map(|s| s[dir]).unwrap_or_default();
        if shape.loss > 0.0 && rand::random::<f64>() < shape.loss {
            c.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // The bottleneck: a packet waits for the ones ahead of it, then takes its serialization time.
        while backlog.front().is_some_and(|t| *t <= now) {
            backlog.pop_front();
        }
        let sent = if shape.rate_bps > 0 {
            if backlog.len() >= shape.queue.max(1) {
                c.queue_drops.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let start = busy_until.max(now);
            let bits = packet.len() as f64 * 8.0;
            busy_until = start + Duration::from_secs_f64(bits / shape.rate_bps as f64);
            backlog.push_back(busy_until);
            busy_until
        } else {
            now
        };
        let jitter = if shape.jitter.is_zero() {
            0.0
        } else {
            (rand::random::<f64>() * 2.0 - 1.0) * shape.jitter.as_secs_f64()
        };
        let delay = Duration::from_secs_f64((shape.delay.as_secs_f64() + jitter).max(0.0));
        let due = (sent + delay).max(last_due);
        last_due = due;
        let (queue, wake) = &**line;
        if let Ok(mut q) = queue.lock() {
            q.push_back((due, packet));
            wake.notify_one();
        }
    }
}

/// The delay line: writes each packet when it is due (unless a blackout is on by then).
fn write_side(mut to: File, shared: &Shared, line: &Line) {
    let c = &shared.counters;
    let (queue, wake) = &**line;
    while !shared.stop.load(Ordering::SeqCst) {
        let next = {
            let Ok(mut q) = queue.lock() else { return };
            let now = Instant::now();
            match q.front() {
                Some((due, _)) if *due <= now => q.pop_front(),
                Some((due, _)) => {
                    let wait = (*due - now).min(Duration::from_millis(100));
                    drop(wake.wait_timeout(q, wait));
                    None
                }
                None => {
                    drop(wake.wait_timeout(q, Duration::from_millis(100)));
                    None
                }
            }
        };
        let Some((_, packet)) = next else { continue };
        if shared.blacked_out(Instant::now()) {
            c.blackout_drops.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if to.write(&packet).is_ok() {
            c.relayed.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(packet.len() as u64, Ordering::Relaxed);
        }
    }
}

/// An IPv4 packet from and to 198.18.0.0/24.
fn ours(p: &[u8]) -> bool {
    p.len() >= 20 && p[0] >> 4 == 4 && p[12..15] == NET && p[16..19] == NET
}

/// Applies the NAT to one packet; false: drop it.
fn translate(nat: &mut Nat, dir: usize, p: &mut [u8], c: &Counters) -> bool {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let proto = p[9];
    let fragment = u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0;
    if !(proto == 6 || proto == 17) || fragment || p.len() < ihl + 14 {
        return true;
    }
    let port = |p: &[u8], at: usize| u16::from_be_bytes([p[ihl + at], p[ihl + at + 1]]);
    let (src_port, dst_port) = (port(p, 0), port(p, 2));
    let ip = |at: usize| [p[at], p[at + 1], p[at + 2], p[at + 3]];
    let flow: Flow = if dir == UP {
        (proto, ip(12), src_port, dst_port)
    } else {
        (proto, ip(16), dst_port, src_port)
    };
    if proto == 6 {
        // A SYN from the phone opens a new connection: a new mapping, even on a 4-tuple that died.
        let syn = p[ihl + 13] & 0x12 == 0x02;
        if dir == UP && syn {
            nat.dead.remove(&flow);
        }
        nat.flows.entry(flow).or_insert(None);
        return !nat.dead.contains(&flow);
    }
    if dir == UP {
        if let Some(ext) = *nat.flows.entry(flow).or_insert(None) {
            set_port(p, ihl, 0, ext);
            c.rewritten.fetch_add(1, Ordering::Relaxed);
        }
        return true;
    }
    if let Some(&(addr, orig)) = nat.back.get(&(dst_port, src_port)) {
        if addr == ip(16) {
            set_port(p, ihl, 2, orig);
            c.rewritten.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    }
    // To a port whose mapping was rebound: the NAT forgot it.
    !matches!(nat.flows.get(&flow), Some(Some(_)))
}

/// Rewrites the UDP port at `at` (0 source, 2 destination) and fixes the checksum (RFC 1624).
fn set_port(p: &mut [u8], ihl: usize, at: usize, new: u16) {
    let i = ihl + at;
    let old = u16::from_be_bytes([p[i], p[i + 1]]);
    p[i..i + 2].copy_from_slice(&new.to_be_bytes());
    let ck = ihl + 6;
    let sum = u16::from_be_bytes([p[ck], p[ck + 1]]);
    if sum == 0 {
        return; // no checksum
    }
    let mut acc = u32::from(!sum) + u32::from(!old) + u32::from(new);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    let mut fixed = !(acc as u16);
    if fixed == 0 {
        fixed = 0xffff;
    }
    p[ck..ck + 2].copy_from_slice(&fixed.to_be_bytes());
}
