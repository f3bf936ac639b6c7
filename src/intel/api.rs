//! `GET /api/devices` and `GET /api/devices/{mac}`: the inventory as the central thread last
//! published it ([`super::SharedInventory`]); a request never touches the packet path or the
//! device table itself.
//!
//! - `/api/devices?category=ct&vendor=siemens&limit=100&offset=0`: `{"total": N, "offset":
//!   o, "limit": l, "devices": [...]}` with the devices matching (category: exact stable
//!   name; vendor: case-insensitive substring), sorted by key, without their evidence lists
//!   (`evidence_kinds` tells which kinds there are). `limit` defaults to 100, at most 1000.
//! - `/api/devices/{id}`: one device with its evidence; `id` is a MAC (any case, `:` or `-`)
//!   or a device key (`mac:...`, `ip:...`). 404 when unknown, 400 when not an id.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::SharedInventory;

/// Most devices one page returns.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// The routes, with their state applied (merge into the server's router).
pub fn router(inv: SharedInventory) -> Router {
    Router::new()
        .route("/api/devices", get(list))
        .route("/api/devices/{id}", get(one))
        .with_state(inv)
}

fn json_text(body: String) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn bad(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": msg })),
    )
        .into_response()
}

async fn list(
    State(inv): State<SharedInventory>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    for k in q.keys() {
        if !matches!(k.as_str(), "category" | "vendor" | "limit" | "offset") {
            return bad(format!(
                "unknown parameter '{k}' (known: category, vendor, limit, offset)"
            ));
        }
    }
    let num = |k: &str, default: usize| -> Result<usize, String> {
        match q.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| format!("{k}: not a number: '{v}'")),
        }
    };
    let limit = match num("limit", DEFAULT_PAGE) {
        Ok(n) => n.min(MAX_PAGE),
        Err(e) => return bad(e),
    };
    let offset = match num("offset", 0) {
        Ok(n) => n,
        Err(e) => return bad(e),
    };
    if let Some(c) = q.get("category") {
        if crate::fingerprint::Category::from_name(c).is_none() {
            return bad(format!("category: unknown '{c}'"));
        }
    }
    let vendor = q.get("vendor").map(|v| v.to_lowercase());
    let snap = match inv.read() {
        Ok(g) => g.clone(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let matching: Vec<&super::SnapshotDevice> = snap
        .devices
        .iter()
        .filter(|d| q.get("category").is_none_or(|c| d.category == c))
        .filter(|d| {
            vendor.as_ref().is_none_or(|v| {
                d.vendor
                    .as_ref()
                    .is_some_and(|dv| dv.to_lowercase().contains(v.as_str()))
            })
        })
        .collect();
    // The devices are JSON text already: the body is put together around them.
    let mut body = format!(
        "{{\"total\":{},\"offset\":{offset},\"limit\":{limit},\"devices\":[",
        matching.len()
    );
    for (n, d) in matching.iter().skip(offset).take(limit).enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&d.summary);
    }
    body.push_str("]}");
    json_text(body)
}

/// A device key from a path id: `mac:..`/`ip:..` as is, or a MAC in any usual spelling.
fn key_of(id: &str) -> Option<String> {
    if id.starts_with("mac:") || id.starts_with("ip:") {
        return Some(id.to_lowercase());
    }
    let mac = medtap_parsers::oui::parse_mac(&id.replace('-', ":")).ok()?;
    Some(format!("mac:{}", medtap_parsers::oui::format_mac(&mac)))
}

async fn one(State(inv): State<SharedInventory>, Path(id): Path<String>) -> Response {
    let Some(key) = key_of(&id) else {
        return bad(format!("'{id}' is not a MAC address or device key"));
    };
    let snap = match inv.read() {
        Ok(g) => g.clone(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match snap.devices.binary_search_by(|d| d.key.as_str().cmp(&key)) {
        Ok(i) => json_text(snap.devices[i].detail.to_string()),
        Err(_) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("no device {key}") })),
        )
            .into_response(),
    }
}
