//! `odd bench`: drives a gateway with many real connections and prints what a user would ask first:
//! messages per second delivered, send->deliver latency percentiles, connections per second, server memory
//! per connection, file throughput. By default it starts its own gateway (the `odd-gateway` binary beside
//! `odd`) on free ports, so the server's RSS can be read from /proc.

mod churn;
mod receiver;
mod report;
mod scenarios;
mod server;

use clap::{Args, ValueEnum};

use super::Cli;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// One sender, N receivers in one room.
    Fanout,
    /// R rooms of N members; one sender per room.
    Rooms,
    /// N connections that connect, open a pipe and stay idle.
    Idle,
    /// Files of --size bytes to one receiver.
    File,
    /// -m rounds of N clients joining --rooms rooms, then leaving: the server's RSS after each round.
    Churn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Tcp,
    Tls,
    Quic,
    Ws,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    pub scenario: Scenario,
    #[arg(long, value_enum, default_value = "tcp")]
    pub transport: Transport,
    /// Receivers (fanout), members per room (rooms), connections (idle).
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub connections: usize,
    /// Rooms (rooms scenario).
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Messages each sender sends (files, for `file`).
    #[arg(long, short, default_value_t = 200)]
    pub messages: usize,
    /// Target send rate per sender in messages/s; 0 = as fast as the acknowledgements allow.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Messages a sender keeps in flight (sent, not yet acknowledged) when sending flat out. `--window` as
    /// large as `-m` sends without waiting, as a NATS core publisher does.
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// File size in bytes (file scenario).
    #[arg(long, default_value_t = 1 << 20)]
    pub size: usize,
    /// Use the gateway at --url instead of starting one (RSS needs --server-pid).
    #[arg(long)]
    pub attach: bool,
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, args: &BenchArgs) -> anyhow::Result<()> {
    let (target, _server) = if args.attach {
        (server::Target::attach(cli, args.server_pid)?, None)
    } else {
        let s = server::Spawned::start().await?;
        (s.target(args.transport)?, Some(s))
    };
    if args.scenario == Scenario::Churn {
        let c = churn::run(&target, args).await?;
        let mib: Vec<u64> = c.rss_kib.iter().map(|k| k / 1024).collect();
        if args.json {
            println!(
                "{}",
                serde_json::json!({"scenario": "churn", "rss_mib": mib, "seconds": c.seconds})
            );
        } else {
            println!(
                "server RSS (MiB) before and after each round: {mib:?} in {:.1} s",
                c.seconds
            );
        }
        return Ok(());
    }
    let report = scenarios::run(&target, args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
    }
    Ok(())
}
