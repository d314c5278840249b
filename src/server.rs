//! Serving connections, with the bounds a public listener needs (checklist H91, and holes 3,
//! 4 and 9 of the hardening issue):
//!
//! - a client must send a request's headers within `header_read_timeout`; the same timer closes
//!   a keep-alive connection left idle that long (slowloris);
//! - each client address (IPv6 per /64) may hold at most `max_connections_per_ip` connections;
//!   more are closed as soon as they are accepted;
//! - on shutdown `/readyz` turns 503 at once, the listener keeps accepting for `drain_delay`,
//!   then stops; in-flight requests finish, idle connections close, and after
//!   `shutdown_timeout` whatever is left is abandoned so the process exits.
//!
//! The whole-request timeout and the bound on requests in flight are layers
//! ([`crate::routes`]); this module owns only what happens below HTTP.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

use crate::config::ServerSettings;
use crate::web::limits::bucket;

/// Serves `router` on `listener` until `stop` turns true, then shuts down as the module says.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    server: ServerSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(server.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(server.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let connections = Connections::new(server.max_connections_per_ip.map(|n| n.get() as usize));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Some(slot) = connections.admit(peer.ip()) else {
            tracing::debug!(peer = %bucket(peer.ip()), "too many connections from one address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = match make_service.call(peer).await {
            Ok(s) => s,
            Err(never) => match never {},
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        open,
        "no longer accepting connections; finishing in-flight requests"
    );
    if tokio::time::timeout(server.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?server.shutdown_timeout,
            "shutdown_timeout passed with connections still open; closing them"
        );
    }
}

/// Resolves once `stop` says true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Open connections per client address.
#[derive(Clone)]
struct Connections {
    max: Option<usize>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    connections: Connections,
    key: IpAddr,
}

impl Connections {
    fn new(max: Option<usize>) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let key = bucket(ip);
        if let Some(max) = self.max {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(key).or_default();
            if *n >= max {
                return None;
            }
            *n += 1;
        }
        Some(Slot {
            connections: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.connections.max.is_none() {
            return;
        }
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_a_freed_place_is_given_again() {
        let c = Connections::new(Some(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = c.admit(a).unwrap();
        let _second = c.admit(a).unwrap();
        assert!(c.admit(a).is_none());
        assert!(c.admit(b).is_some(), "another address has its own cap");
        drop(first);
        assert!(c.admit(a).is_some());
    }

    #[test]
    fn ipv6_addresses_share_the_cap_of_their_64() {
        let c = Connections::new(Some(1));
        let _one = c.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(c.admit("2001:db8::2".parse().unwrap()).is_none());
        assert!(c.admit("2001:db8:0:1::1".parse().unwrap()).is_some());
    }

    #[test]
    fn no_cap_admits_everyone_and_keeps_no_counts() {
        let c = Connections::new(None);
        let slots: Vec<_> = (0..1000)
            .map(|_| c.admit("192.0.2.1".parse().unwrap()).unwrap())
            .collect();
        assert!(c.open.lock().unwrap().is_empty());
        drop(slots);
    }
}
