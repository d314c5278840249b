//! The outbox as admins see it: `GET /admin/api/webhooks/deliveries` lists deliveries (pending,
//! delivered, failed) newest first; `POST /admin/api/webhooks/deliveries/{id}/retry` makes a
//! failed one due again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, UserReader};
use super::error::{ApiError, ErrorBody, Path, Query};
use crate::clock::rfc3339_utc;
use crate::state::AppState;
use crate::store::{Delivery, DeliveryState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Only deliveries in this state: `pending`, `delivered` or `failed`.
    pub state: Option<String>,
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// One event for one destination.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// `webhook <url>` or `hook onetrust <url>`.
    pub destination: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    /// When a pending delivery is tried next (Unix seconds).
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub created_at_utc: String,
    pub delivered_at: Option<i64>,
    /// The event as webhooks receive it.
    pub event: Value,
}

impl DeliveryView {
    fn of(d: Delivery) -> Self {
        Self {
            event: serde_json::from_str(&d.body).unwrap_or(Value::Null),
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            destination: d.destination,
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            created_at_utc: rfc3339_utc(d.created_at),
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// Deliveries of events to webhooks and hooks, newest first.
#[utoipa::path(get, path = "/admin/api/webhooks/deliveries", tag = "events", params(DeliveryParams),
    responses((status = 200, body = Vec<DeliveryView>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_deliveries(
    _: UserReader,
    State(state): State<AppState>,
    Query(p): Query<DeliveryParams>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_request("limit: between 1 and 500"));
    }
    let wanted =
        match p.state.as_deref() {
            None => None,
            Some(s) => Some(s.parse::<DeliveryState>().map_err(|_| {
                ApiError::invalid_request("state: one of pending, delivered, failed")
            })?),
        };
    let rows = state.store.deliveries(wanted, limit).await?;
    Ok(Json(rows.into_iter().map(DeliveryView::of).collect()))
}

/// Makes a failed delivery due again now (its attempts so far are kept).
#[utoipa::path(post, path = "/admin/api/webhooks/deliveries/{id}/retry", tag = "events",
    params(("id" = String, Path, description = "The delivery's id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn retry_delivery(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.retry_delivery(&id, state.now()).await? {
        crate::telemetry::events::admin_change(&admin.actor, "delivery.retry", &id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "no failed delivery has this id (a pending one is retried by itself)",
        ))
    }
}
