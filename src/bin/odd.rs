//! `odd`: the command-line client (chat, send, history, chmod) and the benchmark harness.

#[tokio::main]
async fn main() {
    if let Err(e) = odd_gateway::cli::run().await {
        // Output piped into `head` and closed early is not an error worth a message.
        if e.downcast_ref::<std::io::Error>().map(|io| io.kind())
            == Some(std::io::ErrorKind::BrokenPipe)
        {
            return;
        }
        eprintln!(
            "error: {}",
            odd_gateway::cli::print::safe(&format!("{e:#}"))
        );
        std::process::exit(1);
    }
}
