//! The HTTP surface: the 1C exchange endpoint, the store API, health and metrics.

pub mod api;
pub mod exchange;
pub mod problem;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::Router;

use crate::startup::App;

/// Paths 1C may be pointed at.
pub const EXCHANGE_PATHS: [&str; 2] = ["/bitrix/admin/1c_exchange.php", "/1c_exchange.php"];

/// The whole router.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = usize::try_from(app.config.limits.max_body_bytes).unwrap_or(usize::MAX);
    let mut r = Router::new();
    for path in EXCHANGE_PATHS {
        r = r.route(path, any(exchange::handle));
    }
    r.nest("/api/v1", api::router(Arc::clone(&app)))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(app)
}

async fn healthz(State(app): State<Arc<App>>) -> impl IntoResponse {
    match app.store.get_setting("healthz").await {
        Ok(_) => (axum::http::StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable\n",
            )
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
