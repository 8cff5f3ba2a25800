//! The store API under `/api/v1` (JSON, `Authorization: Bearer <api_token>`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use exchange::domain::{Order, OrderInput};
use serde::Deserialize;
use store::{OrderFilter, UpsertOutcome};

use super::problem::Problem;
use crate::auth;
use crate::metrics::ErrorKind;
use crate::startup::App;

/// The OpenAPI document served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Routes under `/api/v1`.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    let protected = Router::new()
        .route("/orders", get(list_orders).post(create_order))
        .route("/orders/{number}", get(get_order).put(update_order))
        .route("/exchange/sessions", get(sessions))
        .route("/outbox", get(crate::push::list_handler))
        .route_layer(middleware::from_fn_with_state(app, bearer));
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(protected)
}

async fn bearer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(token) = &app.config.api_token else {
        app.metrics.error(ErrorKind::Api);
        return Problem::unauthorized("The API token is not configured (OBMEN_API_TOKEN).")
            .into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    match given {
        Some(t) if auth::ct_str_eq(t, token.expose()) => next.run(req).await,
        _ => {
            app.metrics.error(ErrorKind::Api);
            Problem::unauthorized("Missing or wrong bearer token.").into_response()
        }
    }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The order as the API shows it: the submitted body with the current `status`, plus 1C's facts
/// and the history.
fn view(mut order: Order) -> serde_json::Value {
    let status = order.input.status_code().to_owned();
    order.input.status = Some(status);
    serde_json::to_value(&order).unwrap_or(serde_json::Value::Null)
}

/// Parses a JSON body, naming the field at fault.
fn parse_input(body: &[u8]) -> Result<OrderInput, Problem> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let input: OrderInput = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        Problem::bad_request(e.inner().to_string(), field)
    })?;
    de.end()
        .map_err(|e| Problem::bad_request(e.to_string(), None))?;
    Ok(input)
}

fn validate(app: &App, input: &OrderInput) -> Result<(), Problem> {
    let number = input.number.trim();
    if number.is_empty() {
        return Err(Problem::invalid("number", "number must not be empty"));
    }
    if number.len() > 100 || number.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "number",
            "number must be at most 100 characters without control characters",
        ));
    }
    if let Some(status) = &input.status {
        if app.config.exchange.statuses.by_code(status).is_none() {
            return Err(Problem::invalid(
                "status",
                format!("unknown status code {status:?}; it must be one of the status mapping"),
            ));
        }
    }
    for (i, item) in input.items.iter().enumerate() {
        if item.name.trim().is_empty() {
            return Err(Problem::invalid(
                &format!("items[{i}].name"),
                "name must not be empty",
            ));
        }
        if item.quantity <= rust_decimal::Decimal::ZERO {
            return Err(Problem::invalid(
                &format!("items[{i}].quantity"),
                "quantity must be positive",
            ));
        }
        if item.price < rust_decimal::Decimal::ZERO {
            return Err(Problem::invalid(
                &format!("items[{i}].price"),
                "price must not be negative",
            ));
        }
        if item
            .discount
            .is_some_and(|d| d < rust_decimal::Decimal::ZERO)
        {
            return Err(Problem::invalid(
                &format!("items[{i}].discount"),
                "discount must not be negative",
            ));
        }
    }
    for (i, d) in input.discounts.iter().enumerate() {
        if d.amount < rust_decimal::Decimal::ZERO {
            return Err(Problem::invalid(
                &format!("discounts[{i}].amount"),
                "amount must not be negative",
            ));
        }
    }
    if input
        .delivery
        .as_ref()
        .and_then(|d| d.price)
        .is_some_and(|p| p < rust_decimal::Decimal::ZERO)
    {
        return Err(Problem::invalid(
            "delivery.price",
            "price must not be negative",
        ));
    }
    Ok(())
}

async fn create_order(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, Problem> {
    let input = parse_input(&body).inspect_err(|_| app.metrics.error(ErrorKind::Api))?;
    validate(&app, &input).inspect_err(|_| app.metrics.error(ErrorKind::Api))?;
    let outcome = app.store.upsert_order(&input, app.clock.now()).await?;
    let status = if outcome.is_created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(outcome.into_order()))).into_response())
}

async fn update_order(
    State(app): State<Arc<App>>,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(e.to_string(), None))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(Problem::bad_request("the body must be a JSON object", None));
    };
    match obj.get("number") {
        None => {
            obj.insert(
                "number".to_owned(),
                serde_json::Value::String(number.clone()),
            );
        }
        Some(serde_json::Value::String(n)) if *n == number => {}
        Some(_) => {
            return Err(Problem::invalid(
                "number",
                "number in the body differs from the number in the path",
            ))
        }
    }
    let body = serde_json::to_vec(&value).map_err(|e| Problem::internal(&e))?;
    let input = parse_input(&body)?;
    validate(&app, &input)?;
    if app.store.order_by_number(&number).await?.is_none() {
        return Err(Problem::not_found(format!("no order {number:?}")));
    }
    let outcome = app.store.upsert_order(&input, app.clock.now()).await?;
    let order = match outcome {
        UpsertOutcome::Created(o) | UpsertOutcome::Updated(o) | UpsertOutcome::Unchanged(o) => o,
    };
    Ok((StatusCode::OK, Json(view(order))).into_response())
}

async fn get_order(
    State(app): State<Arc<App>>,
    Path(number): Path<String>,
) -> Result<Response, Problem> {
    match app.store.order_by_number(&number).await? {
        Some(o) => Ok(Json(view(o)).into_response()),
        None => Err(Problem::not_found(format!("no order {number:?}"))),
    }
}

/// Query of `GET /api/v1/orders`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    changed_since: Option<String>,
    after_id: Option<i64>,
    limit: Option<u32>,
}

async fn list_orders(
    State(app): State<Arc<App>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text(), None))?;
    let changed_since = match q.changed_since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    Problem::invalid(
                        "changed_since",
                        format!("{s:?} is not an RFC 3339 time: {e}"),
                    )
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let filter = OrderFilter {
        status: q.status.filter(|s| !s.is_empty()),
        changed_since,
        after_id: q.after_id,
        limit: Some(q.limit.unwrap_or(1000).min(10_000)),
    };
    let orders = app.store.list_orders(&filter).await?;
    let list: Vec<serde_json::Value> = orders.into_iter().map(view).collect();
    Ok(Json(serde_json::json!({ "orders": list })).into_response())
}

#[derive(Debug, Deserialize)]
struct SessionsQuery {
    limit: Option<u32>,
}

async fn sessions(
    State(app): State<Arc<App>>,
    Query(q): Query<SessionsQuery>,
) -> Result<Response, Problem> {
    let reports = app
        .store
        .sessions_report(q.limit.unwrap_or(20).min(500))
        .await?;
    let list: Vec<serde_json::Value> = reports
        .into_iter()
        .map(|r| {
            let mut s = r.session;
            // The cookie digest is a credential-equivalent lookup key; never show it.
            s.cookie = String::new();
            s.sessid = String::new();
            serde_json::json!({
                "id": s.id,
                "user": s.user,
                "created_at": s.created_at,
                "last_seen_at": s.last_seen_at,
                "version": s.version,
                "zip": s.zip,
                "legacy": s.legacy,
                "requests": r.requests,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "sessions": list })).into_response())
}
