//! The gateway's HTTP listeners: the public one (connector routes: web chat, webhooks, file
//! links, and a bare `/healthz`) and the admin one (`/readyz`, `/metrics`), which shows internal
//! state and error text and so is served apart, on loopback unless configured otherwise, and
//! behind a bearer token when one is configured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use switchboard_api::{Connector, Desk, Gateway, Health, Secret};

use crate::lifecycle::ConnectorStatuses;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the start-up check found for each desk channel (default and routed), for `/readyz`.
pub type DeskChannelChecks = Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// What `/readyz` and `/metrics` look at.
#[derive(Clone)]
pub struct HealthState {
    /// Checked with a PING.
    pub store: Store,
    /// Each enabled connector's health.
    pub connectors: Vec<Arc<dyn Connector>>,
    /// What the supervisor says of connectors that failed (restarting, or stopped for good).
    pub connector_statuses: ConnectorStatuses,
    /// Set when the gateway is shutting down: not ready, so load balancers stop sending.
    pub draining: Arc<AtomicBool>,
    /// The agent desk's health; `None` is reported as a warning, not a failure.
    pub desk: Option<Arc<dyn Desk>>,
    /// Rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The start-up check of the desk's channels.
    pub desk_channels: DeskChannelChecks,
}

/// The public router: every connector's routes plus a bare `/healthz` (no detail: anyone can
/// reach it).
pub fn public_router(gateway: Arc<dyn Gateway>, connectors: &[Arc<dyn Connector>]) -> Router {
    let mut router = Router::new();
    for connector in connectors {
        if let Some(routes) = connector.routes(gateway.clone()) {
            router = router.merge(routes);
        }
    }
    router.route("/healthz", get(|| async { "ok" }))
}

/// The admin router: `/readyz` (which names failing parts and their errors), `/metrics` and
/// `/healthz`, each requiring `Authorization: Bearer <token>` when `token` is set.
pub fn admin_router(health: HealthState, token: Option<Secret>) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(health);
    match token {
        Some(token) => router.layer(axum::middleware::from_fn(move |request, next| {
            require_bearer(token.clone(), request, next)
        })),
        None => router,
    }
}

/// Refuses a request without the admin token, compared in constant time.
async fn require_bearer(token: Secret, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let matches: bool =
        subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), token.expose().as_bytes()).into();
    if matches {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "admin endpoints need the token of gateway.admin_token_env\n",
        )
            .into_response()
    }
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
    if state.draining.load(Ordering::SeqCst) {
        record("gateway", Health::Down("shutting down".into()));
    }
    let supervised = state
        .connector_statuses
        .lock()
        .map(|statuses| statuses.clone())
        .unwrap_or_default();
    for connector in &state.connectors {
        let channel = connector.channel().as_str();
        let health = match supervised.get(channel) {
            Some(status) => status.clone(),
            None => connector.health().await,
        };
        record(channel, health);
    }
    match &state.desk {
        Some(desk) => record("desk", desk.health().await),
        // A deliberate set-up (a trial, an AI-only deployment), so not a failure; but an
        // operator must see that escalated customers reach no one.
        None => {
            checks.insert(
                "desk".into(),
                "none: escalations reach no one (customers are told no person can join); \
                 enable a desk ([desk.<name>]) to staff them"
                    .into(),
            );
        }
    }
    let channels = state
        .desk_channels
        .lock()
        .map(|found| found.clone())
        .unwrap_or_default();
    if !channels.is_empty() {
        checks.insert("desk_channels".into(), serde_json::json!(channels));
    }
    // Targets with no delivery through for longer than `outbox.unhealthy_after_ms`: reported,
    // not failing readiness, since the outage is the platform's and a load balancer pulling
    // every instance would take the other channels down with it.
    if let Some(failing) = state
        .metrics
        .delivery_health
        .readyz_report(crate::model::now_ms())
    {
        checks.insert("outbox".into(), failing);
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(serde_json::Value::Object(checks)))
}
