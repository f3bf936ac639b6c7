//! The HTTP endpoint (`--listen`): `/metrics` (Prometheus text), `/healthz` and the device
//! inventory (`/api/devices`, [`crate::intel::api`]), served by
//! `tokio` + `axum` on a thread of its own so the packet path never waits for it. It runs
//! during replay too, so a long replay can be watched.
//!
//! `--web-config` ([`crate::webconfig`]) adds TLS (rustls, through `axum-server`) and basic-auth
//! or bearer-token checks. The check is a layer over the whole [`Router`] built by [`routes`]:
//! a route added there (e.g. `/api/devices`, `/api/alerts`) inherits it without doing anything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::webconfig::{Auth, WebConfig};

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

/// Every route the endpoint serves. Add routes here: [`start`] puts the authentication layer
/// over all of them.
fn routes(state: AppState, inventory: crate::intel::SharedInventory) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/api/alerts", get(alerts_handler))
        .with_state(state)
        .merge(crate::intel::api::router(inventory))
}

/// Refuse a request without valid credentials (when `--web-config` asks for any) with 401.
async fn require_auth(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let a = auth.clone();
    // bcrypt is deliberately slow: check on the blocking pool, not on the runtime thread.
    let ok = tokio::task::spawn_blocking(move || a.check(header.as_deref()))
        .await
        .unwrap_or(false);
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"medtap\"")],
            "unauthorized\n",
        )
            .into_response()
    }
}

/// Bind `addr` now (so a bad address fails before capture starts) and serve in the background,
/// over TLS and behind authentication when `web` says so.
pub fn start(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    web: Option<WebConfig>,
    inventory: crate::intel::SharedInventory,
) -> Result<Server> {
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
                    tracing::error!(error = %e, "HTTP server stopped");
                    return;
                }
            };
            rt.block_on(async move {
                let mut app = routes(state, inventory);
                let tls = web.as_ref().and_then(|w| w.tls.clone());
                if let Some(w) = web.filter(|w| w.auth.required()) {
                    app = app.layer(axum::middleware::from_fn_with_state(
                        w.auth.clone(),
                        require_auth,
                    ));
                }
                let served = match tls {
                    Some(cfg) => {
                        let cfg = axum_server::tls_rustls::RustlsConfig::from_config(cfg);
                        match axum_server::tls_rustls::from_tcp_rustls(std_listener, cfg) {
                            Ok(s) => s.serve(app.into_make_service()).await,
                            Err(e) => Err(e),
                        }
                    }
                    None => match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => axum::serve(l, app).await,
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = served {
                    tracing::error!(error = %e, "HTTP server stopped");
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

/// `GET /api/alerts`: the most recent alerts (at most
/// [`crate::detect::output::RECENT_ALERTS`]), oldest first, as `{"alerts": [...]}`.
async fn alerts_handler(State(s): State<AppState>) -> impl IntoResponse {
    let body = {
        let r = match s.metrics.recent_alerts.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let mut b = b"{\"alerts\":[".to_vec();
        for (i, line) in r.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            b.extend_from_slice(line);
        }
        b.extend_from_slice(b"]}\n");
        b
    };
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.healthy.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
    }
}
