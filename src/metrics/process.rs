//! Process metrics (`process_*`, the names Prometheus's client libraries use), read from `/proc` at scrape
//! time. Our own because the prometheus crate's collector exports CPU time in whole seconds: at a 5 s window a
//! busy gateway showed 0 CPU. Here CPU seconds keep their 1/100 s resolution (Linux's USER_HZ).

use prometheus::{Counter, Gauge, Registry};

pub struct ProcessMetrics {
    cpu_seconds: Counter,
    resident_bytes: Gauge,
    virtual_bytes: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge,
    threads: Gauge,
}

/// The families this collector exports (for `Metrics::family_names`).
pub const NAMES: [&str; 7] = [
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// `/proc/<pid>/stat` times are in clock ticks of 1/100 s on every Linux userland ABI.
const TICKS_PER_SECOND: f64 = 100.0;
/// Pages of `rss` in `/proc/<pid>/stat`.
const PAGE_BYTES: f64 = 4096.0;

fn gauge(r: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat` (`None`: this process): what the
/// gateway exports as `process_cpu_seconds_total`, and what the benches read for a server's CPU per delivery.
pub fn cpu_time(pid: Option<u32>) -> Option<std::time::Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    let f = stat_fields(&stat)?;
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    Some(std::time::Duration::from_secs_f64(
        (field(14)? + field(15)?) / TICKS_PER_SECOND,
    ))
}

/// The fields of a `/proc/<pid>/stat` line from field 3 (state) on, so field N is at index N - 3. The command
/// name before them is in parentheses and may hold spaces: fields are counted after the last ')'.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

impl ProcessMetrics {
    pub fn register(r: &Registry) -> ProcessMetrics {
        let cpu_seconds = Counter::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        )
        .unwrap_or_else(|e| panic!("metric: {e}"));
        r.register(Box::new(cpu_seconds.clone()))
            .unwrap_or_else(|e| panic!("metric: {e}"));
        ProcessMetrics {
            cpu_seconds,
            resident_bytes: gauge(
                r,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_bytes: gauge(
                r,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: gauge(r, "process_open_fds", "Number of open file descriptors."),
            max_fds: gauge(
                r,
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            start_time: gauge(
                r,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
            threads: gauge(r, "process_threads", "Number of OS threads in the process."),
        }
    }

    /// Reads `/proc/self` now. Anything unreadable leaves its metric as it was (never a panic).
    pub fn refresh(&self) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        let Some(f) = stat_fields(&stat) else {
            return;
        };
        let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            let total = (utime + stime) / TICKS_PER_SECOND;
            let delta = total - self.cpu_seconds.get();
            if delta > 0.0 {
                self.cpu_seconds.inc_by(delta);
            }
        }
        if let Some(t) = field(20) {
            self.threads.set(t);
        }
        if let Some(v) = field(23) {
            self.virtual_bytes.set(v);
        }
        if let Some(rss) = field(24) {
            self.resident_bytes.set(rss * PAGE_BYTES);
        }
        if let (Some(start), Some(boot)) = (field(22), boot_time()) {
            self.start_time.set(boot + start / TICKS_PER_SECOND);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as f64);
        }
        if let Some(max) = max_open_files() {
            self.max_fds.set(max);
        }
    }
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn max_open_files() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_lists_what_is_registered() {
        let r = prometheus::Registry::new();
        let p = super::ProcessMetrics::register(&r);
        p.refresh();
        let mut got: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
        let mut want: Vec<String> = super::NAMES.map(String::from).to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
