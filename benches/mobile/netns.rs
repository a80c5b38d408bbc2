//! The topology: two network namespaces, each with one TUN device, joined by the userspace link (`link.rs`).
//! The gateway's side is 198.18.0.1/24, the phone's 198.18.0.2/24 (198.18.0.3 after a notified address
//! change). Neither namespace has any other route, so nothing is ever sent to an address outside
//! 198.18.0.0/24. In the phone's namespace `localhost` resolves to the gateway (`/etc/netns/<ns>/hosts`, which
//! `ip netns exec` mounts over `/etc/hosts`), so clients check the gateway's dev certificate (issued to
//! `localhost`) as they would on one machine.
//!
//! Self-contained apart from `link.rs`, so `tests/mobile.rs` can `#[path]`-include both.

use std::process::Command;
use std::time::Duration;

use super::link::{open_tun, Link};

/// The bench's namespaces (`Topology::up("oddm")`); tests use another prefix, so both can run at once.
pub const GW_NS: &str = "oddm-gw";
pub const PH_NS: &str = "oddm-ph";
pub const TUN: &str = "oddm0";
pub const GW_ADDR: &str = "198.18.0.1";
const PHONE_ADDRS: [&str; 2] = ["198.18.0.2", "198.18.0.3"];

/// Why this machine cannot run the topology, if it cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and TUN devices need root)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `ip` (iproute2): {e}")),
    }
}

/// Runs a command; its stdout, or an error naming the command and its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program).args(args).output()?;
    if !out.status.success() {
        anyhow::bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn exists(ns: &str) -> bool {
    std::path::Path::new(&format!("/var/run/netns/{ns}")).exists()
}

/// Removes what a run leaves behind (this one's, or an earlier run's that was killed): processes still in our
/// namespaces `<prefix>-gw` and `<prefix>-ph` (by the pids `ip netns pids` names), the namespaces, the phone's
/// hosts file.
pub fn cleanup(prefix: &str) {
    let (gw, ph) = (format!("{prefix}-gw"), format!("{prefix}-ph"));
    for ns in [ph.as_str(), gw.as_str()] {
        if !exists(ns) {
            continue;
        }
        for _ in 0..50 {
            let pids = run("ip", &["netns", "pids", ns]).unwrap_or_default();
            let pids: Vec<i32> = pids
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions; the pid is one inside our namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = run("ip", &["netns", "del", ns]);
    }
    let _ = std::fs::remove_dir_all(format!("/etc/netns/{ph}"));
    // Only if empty (we created it, or nobody uses it).
    let _ = std::fs::remove_dir("/etc/netns");
}

/// The two namespaces and the link; torn down on drop.
pub struct Topology {
    pub link: Option<Link>,
    prefix: String,
    /// The namespaces: `<prefix>-gw`, `<prefix>-ph`.
    pub gw: String,
    pub ph: String,
    phone: usize,
}

impl Topology {
    /// Removes leftovers, then builds namespaces `<prefix>-gw` and `<prefix>-ph` and starts the link
    /// (unimpaired).
    pub fn up(prefix: &str) -> anyhow::Result<Topology> {
        cleanup(prefix);
        let mut t = Topology {
            link: None,
            prefix: prefix.to_string(),
            gw: format!("{prefix}-gw"),
            ph: format!("{prefix}-ph"),
            phone: 0,
        };
        let (gw_ns, ph_ns) = (t.gw.clone(), t.ph.clone());
        for ns in [gw_ns.as_str(), ph_ns.as_str()] {
            run("ip", &["netns", "add", ns])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                    // Deleting the phone's first address must keep the second (a notified change).
                    "net.ipv4.conf.all.promote_secondaries=1",
                    "net.ipv4.conf.default.promote_secondaries=1",
                ],
            )?;
        }
        let gw = open_tun(&gw_ns, TUN)?;
        let ph = open_tun(&ph_ns, TUN)?;
        for (ns, addr) in [(gw_ns.as_str(), GW_ADDR), (ph_ns.as_str(), PHONE_ADDRS[0])] {
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", TUN],
            )?;
            run("ip", &["-n", ns, "link", "set", TUN, "up"])?;
        }
        std::fs::create_dir_all(format!("/etc/netns/{ph_ns}"))?;
        std::fs::write(
            format!("/etc/netns/{ph_ns}/hosts"),
            format!("{GW_ADDR} localhost\n"),
        )?;
        t.link = Some(Link::start(gw, ph)?);
        Ok(t)
    }

    pub fn link(&self) -> anyhow::Result<&Link> {
        self.link
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the link is down"))
    }

    /// The phone's current address.
    pub fn phone_addr(&self) -> &'static str {
        PHONE_ADDRS[self.phone]
    }

    /// A change the phone's OS reports: the phone gets the other address and the old one is removed; the OS
    /// then destroys the TCP sockets bound to the old address (as Android does, `ss -K`), so apps see their
    /// connections fail at once. UDP sockets bound to the wildcard address (QUIC's) are not touched: they send
    /// from the new address from now on. Returns the sockets destroyed.
    pub fn notified_change(&mut self) -> anyhow::Result<usize> {
        let (old, new) = (PHONE_ADDRS[self.phone], PHONE_ADDRS[1 - self.phone]);
        let ph = self.ph.as_str();
        run(
            "ip",
            &["-n", ph, "addr", "add", &format!("{new}/24"), "dev", TUN],
        )?;
        run(
            "ip",
            &["-n", ph, "addr", "del", &format!("{old}/24"), "dev", TUN],
        )?;
        self.phone = 1 - self.phone;
        let killed = run(
            "ip",
            &["netns", "exec", ph, "ss", "-K", "-t", "-n", "src", old],
        )?;
        // `ss` prints a header line, then one line per destroyed socket.
        Ok(killed
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Processes first (they hold the namespaces), then the link (its TUN files), then the namespaces.
        cleanup(&self.prefix);
        drop(self.link.take());
        cleanup(&self.prefix);
    }
}
