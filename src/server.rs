//! The HTTP endpoint (`--listen`): `/metrics` (Prometheus text) and `/healthz`, served by
//! `tokio` + `axum` on a thread of its own so the packet path never waits for it. It runs
//! during replay too, so a long replay can be watched.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    healthy: Arc<AtomicBool>,
}

/// A running server; dropping it does not stop it (it ends with the process).
pub struct Server {
    pub addr: SocketAddr,
    pub healthy: Arc<AtomicBool>,
}

/// Bind `addr` now (so a bad address fails before capture starts) and serve in the background.
pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Server> {
    let std_listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--listen {addr}: cannot bind"))?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let healthy = Arc::new(AtomicBool::new(true));
    let state = AppState {
        metrics,
        healthy: healthy.clone(),
    };
    std::thread::Builder::new()
        .name("medtap-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("medtap: HTTP server: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("medtap: HTTP server: {e}");
                        return;
                    }
                };
                let app = Router::new()
                    .route("/metrics", get(metrics_handler))
                    .route("/healthz", get(healthz))
                    .with_state(state);
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("medtap: HTTP server: {e}");
                }
            });
        })?;
    Ok(Server {
        addr: local,
        healthy,
    })
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.healthy.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
    }
}
