//! The NATS wire (async-nats, core pub/sub): one client connection per node.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::wire::{Subscription, Wire, WireMsg};
use super::BusError;

struct Nats {
    client: async_nats::Client,
}

/// Connects to NATS at `url`, naming the connection after `node`. Fails at once if NATS cannot be reached:
/// a node that cannot see its cluster must not serve as if it were alone.
pub async fn connect(url: &str, node: &str) -> Result<Arc<dyn Wire>, BusError> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("odd-gateway {node}"))
        .connect(url)
        .await
        .map_err(|e| BusError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(Nats { client }))
}

impl Wire for Nats {
    fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), String>> {
        async move {
            match reply {
                Some(reply) => self
                    .client
                    .publish_with_reply(subject, reply, payload)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .client
                    .publish(subject, payload)
                    .await
                    .map_err(|e| e.to_string()),
            }
        }
        .boxed()
    }

    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, String>> {
        async move {
            let sub = self
                .client
                .subscribe(subject)
                .await
                .map_err(|e| e.to_string())?;
            // The server has the subscription before this node says anything that others answer.
            let _ = self.client.flush().await;
            let msgs: Subscription = Box::pin(sub.map(|m| WireMsg {
                no_responders: m.status == Some(async_nats::StatusCode::NO_RESPONDERS),
                subject: m.subject.to_string(),
                reply: m.reply.map(|r| r.to_string()),
                payload: m.payload,
            }));
            Ok(msgs)
        }
        .boxed()
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        async move {
            let _ = self.client.flush().await;
        }
        .boxed()
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
