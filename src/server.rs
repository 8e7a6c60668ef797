//! The gateway's HTTP listener: connector routes (web chat, webhooks) plus health endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use switchboard_api::{Connector, Desk, Gateway, Health};

use crate::metrics::Metrics;
use crate::store::Store;

/// What the start-up check found for each desk channel (default and routed), for `/readyz`.
pub type DeskChannelChecks = Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

#[derive(Clone)]
struct HealthState {
    store: Store,
    connectors: Vec<Arc<dyn Connector>>,
    desk: Option<Arc<dyn Desk>>,
    metrics: Arc<Metrics>,
    desk_channels: DeskChannelChecks,
}

/// Builds the router: every connector's routes plus `/healthz` and `/readyz`.
pub fn router(
    store: Store,
    gateway: Arc<dyn Gateway>,
    connectors: &[Arc<dyn Connector>],
    desk: Option<Arc<dyn Desk>>,
    metrics: Arc<Metrics>,
    desk_channels: DeskChannelChecks,
) -> Router {
    let mut router = Router::new();
    for connector in connectors {
        if let Some(routes) = connector.routes(gateway.clone()) {
            router = router.merge(routes);
        }
    }
    let health = HealthState {
        store,
        connectors: connectors.to_vec(),
        desk,
        metrics,
        desk_channels,
    };
    router.merge(
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(render_metrics))
            .with_state(health),
    )
}

/// The Prometheus text exposition.
async fn render_metrics(State(state): State<HealthState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Ready when Redis answers, every enabled connector is up and no delivery target has been
/// failing for too long; the body says which is not.
async fn ready(State(state): State<HealthState>) -> impl IntoResponse {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let mut record = |name: &str, health: Health| {
        let status = match health {
            Health::Up => "up".to_owned(),
            Health::Down(reason) => {
                ready = false;
                format!("down: {reason}")
            }
        };
        checks.insert(name.into(), status.into());
    };
    let redis = match state.store.ping().await {
        Ok(()) => Health::Up,
        Err(error) => Health::Down(error.to_string()),
    };
    record("redis", redis);
    for connector in &state.connectors {
        record(connector.channel().as_str(), connector.health().await);
    }
    if let Some(desk) = &state.desk {
        record("desk", desk.health().await);
    }
    let channels = state
        .desk_channels
        .lock()
        .map(|found| found.clone())
        .unwrap_or_default();
    if !channels.is_empty() {
        checks.insert("desk_channels".into(), serde_json::json!(channels));
    }
    // Targets with no delivery through for longer than `outbox.unhealthy_after_ms`.
    if let Some(failing) = state
        .metrics
        .delivery_health
        .readyz_report(crate::model::now_ms())
    {
        ready = false;
        checks.insert("outbox".into(), failing);
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(serde_json::Value::Object(checks)))
}
