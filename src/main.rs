//! `odd-gateway`: with no arguments, the dev profile on 127.0.0.1 (see README.md).

use std::time::Duration;

use clap::Parser;
use odd_gateway::config::{Cli, GatewayCommand, LogFormat};
use odd_gateway::gateway::Gateway;
use tracing_subscriber::EnvFilter;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Errors are printed as their chain of causes, never with a backtrace (`RUST_BACKTRACE` in an operator's
/// shell turned a configuration mistake into 60 lines).
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(GatewayCommand::Genconfig) = cli.command {
        print!("{}", odd_gateway::config::example::commented_toml());
        return Ok(());
    }
    let check_only = cli.check_config;
    let mut config = cli.into_config()?;
    if check_only {
        odd_gateway::gateway::check(&config)?;
        // The dev profile's secrets file, as a start would read it (nothing is created here).
        if config.profile == odd_gateway::config::Profile::Dev {
            odd_gateway::config::dev_secrets::read(&config.data_dir).map_err(anyhow::Error::msg)?;
        }
        println!("configuration is valid");
        return Ok(());
    }
    // The dev profile signs tokens and opens the server API with secrets of its own (data/dev-secrets.toml).
    let dev = odd_gateway::config::dev_secrets::apply(&mut config).map_err(anyhow::Error::msg)?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    match config.log.format {
        // Colours only on a terminal: a log file or journald gets plain text (and `NO_COLOR` is honoured).
        LogFormat::Text => tracing_subscriber::fmt()
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stdout())
                    && std::env::var_os("NO_COLOR").is_none(),
            )
            .with_env_filter(filter)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    if let Some(dev) = &dev {
        tracing::info!(
            file = %dev.path.display(),
            created = dev.created,
            "dev profile: {}{}",
            if dev.jwt_secret { "tokens from `odd token --user <id>` are accepted; " } else { "" },
            if dev.api_key { "the server API takes the key `api_key` in that file (`odd admin` reads it)" } else { "" },
        );
    }
    let gateway = Gateway::start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    gateway.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
