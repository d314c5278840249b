//! The outbox's rows as the deliverer and the admin API read them back ([`Delivery`]); what a
//! change writes beside itself is a [`super::OutboxRow`].

use super::records::DeliveryState;

/// An outbox row as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub destination: String,
    pub body: String,
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}
