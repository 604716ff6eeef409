//! Orders and order events in our own SQLite file (tables from migration `0004_orders`),
//! next to the conversations but outside the [`crate::store::Store`] trait: orders are not
//! conversation storage, and this keeps the two free to change apart.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::events::{NewOrderEvent, OrderEvent, OrderEventId, RecordedEvent};
use super::{Order, OrderItem, OrderSource, OrderSourceError, OrderStatus};
use crate::store::StoreError;

/// Our `orders` and `order_events` tables. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct EmbeddedOrders {
    pool: SqlitePool,
}

fn query_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

fn corrupt(table: &'static str, reason: String) -> StoreError {
    StoreError::Corrupt { table, reason }
}

fn day_text(day: Option<NaiveDate>) -> Option<String> {
    day.map(|d| d.format("%Y-%m-%d").to_string())
}

fn day_from(table: &'static str, column: &str, text: Option<String>) -> Result<Option<NaiveDate>, StoreError> {
    text.map(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|e| corrupt(table, format!("{column} {t:?}: {e}"))))
        .transpose()
}

fn status_from(table: &'static str, text: &str) -> Result<OrderStatus, StoreError> {
    OrderStatus::parse(text).ok_or_else(|| corrupt(table, format!("status {text:?}")))
}

fn time_from(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

const ORDER_COLUMNS: &str = "id, status, email, postcode, customer_name, carrier, tracking_number, tracking_url, \
     placed_at, expected_delivery, delivered_at, delay_reason, items_json, updated_at";

const EVENT_COLUMNS: &str =
    "id, event_id, order_id, kind, reason, new_expected_delivery, note, at, payload_json, processed_at";

fn order_from_row(row: &SqliteRow) -> Result<Order, StoreError> {
    let items_json: String = row.get("items_json");
    let items: Vec<OrderItem> =
        serde_json::from_str(&items_json).map_err(|e| corrupt("orders", format!("items_json: {e}")))?;
    let placed: String = row.get("placed_at");
    Ok(Order {
        id: row.get("id"),
        status: status_from("orders", row.get("status"))?,
        email: row.get("email"),
        postcode: row.get("postcode"),
        customer_name: row.get("customer_name"),
        carrier: row.get("carrier"),
        tracking_number: row.get("tracking_number"),
        tracking_url: row.get("tracking_url"),
        placed_at: day_from("orders", "placed_at", Some(placed))?.unwrap_or_default(),
        expected_delivery: day_from("orders", "expected_delivery", row.get("expected_delivery"))?,
        delivered_at: day_from("orders", "delivered_at", row.get("delivered_at"))?,
        delay_reason: row.get("delay_reason"),
        items,
        updated_at: time_from(row.get("updated_at")),
    })
}

fn event_from_row(row: &SqliteRow) -> Result<OrderEvent, StoreError> {
    let payload: String = row.get("payload_json");
    Ok(OrderEvent {
        id: OrderEventId(row.get("id")),
        event_id: row.get("event_id"),
        order_id: row.get("order_id"),
        kind: status_from("order_events", row.get("kind"))?,
        reason: row.get("reason"),
        new_expected_delivery: day_from("order_events", "new_expected_delivery", row.get("new_expected_delivery"))?,
        note: row.get("note"),
        at: time_from(row.get("at")),
        payload: serde_json::from_str(&payload).map_err(|e| corrupt("order_events", format!("payload_json: {e}")))?,
        processed_at: row.get::<Option<i64>, _>("processed_at").map(time_from),
    })
}

impl EmbeddedOrders {
    /// Works on the pool of the conversation store ([`crate::store::SqliteStore::pool`]),
    /// whose migrations create the tables.
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The stored order, looked up case-insensitively (visitors type `fh-100234`).
    ///
    /// # Errors
    /// When the query fails or the row is corrupt.
    pub async fn load(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(order_id.trim())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("load order"))?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Stores an order (already validated), replacing the one with the same number; true
    /// when it was new.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn upsert(&self, order: &Order) -> Result<bool, StoreError> {
        let items_json = serde_json::to_string(&order.items)
            .map_err(|e| corrupt("orders", format!("items not serializable: {e}")))?;
        let mut tx = crate::store::begin_write(&self.pool).await.map_err(query_err("begin order upsert"))?;
        let existed: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE id = ?)")
            .bind(&order.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("check order"))?;
        sqlx::query(
            "INSERT INTO orders (id, status, email, postcode, customer_name, carrier, tracking_number, tracking_url, \
             placed_at, expected_delivery, delivered_at, delay_reason, items_json, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET id = excluded.id, status = excluded.status, email = excluded.email, \
             postcode = excluded.postcode, customer_name = excluded.customer_name, carrier = excluded.carrier, \
             tracking_number = excluded.tracking_number, tracking_url = excluded.tracking_url, \
             placed_at = excluded.placed_at, expected_delivery = excluded.expected_delivery, \
             delivered_at = excluded.delivered_at, delay_reason = excluded.delay_reason, \
             items_json = excluded.items_json, updated_at = excluded.updated_at",
        )
        .bind(&order.id)
        .bind(order.status.as_str())
        .bind(&order.email)
        .bind(&order.postcode)
        .bind(&order.customer_name)
        .bind(&order.carrier)
        .bind(&order.tracking_number)
        .bind(&order.tracking_url)
        .bind(order.placed_at.format("%Y-%m-%d").to_string())
        .bind(day_text(order.expected_delivery))
        .bind(day_text(order.delivered_at))
        .bind(&order.delay_reason)
        .bind(&items_json)
        .bind(order.updated_at.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(query_err("upsert order"))?;
        tx.commit().await.map_err(query_err("commit order upsert"))?;
        Ok(!existed)
    }

    /// How many orders are stored (the sample orders load only into an empty table).
    ///
    /// # Errors
    /// When the query fails.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("count orders"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records an event once per `event_id` and applies it to the order row, if the order is
    /// in our table, in one transaction: the status becomes the event's kind; a `delayed`
    /// event sets the delay reason (any other kind clears it, the row says what is true
    /// now and the events keep the history); a new delivery day replaces the expected one;
    /// `delivered` sets the delivery day if none is known. A repeated `event_id` changes
    /// nothing and returns the original event.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn record_event(&self, event: NewOrderEvent) -> Result<RecordedEvent, StoreError> {
        let event_id = event.event_id.clone().unwrap_or_else(|| format!("gen-{}", uuid::Uuid::new_v4()));
        let payload = serde_json::to_string(&event.payload)
            .map_err(|e| corrupt("order_events", format!("payload not serializable: {e}")))?;
        let mut tx = crate::store::begin_write(&self.pool).await.map_err(query_err("begin record event"))?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO order_events (event_id, order_id, kind, reason, new_expected_delivery, note, at, payload_json) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING id",
        )
        .bind(&event_id)
        .bind(event.order_id.trim())
        .bind(event.kind.as_str())
        .bind(&event.reason)
        .bind(day_text(event.new_expected_delivery))
        .bind(&event.note)
        .bind(event.at.timestamp_millis())
        .bind(&payload)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("insert order event"))?;
        let (new, applied) = if inserted.is_some() {
            let updated = sqlx::query(
                "UPDATE orders SET status = ?1, \
                 delay_reason = CASE WHEN ?1 = 'delayed' THEN COALESCE(?2, delay_reason) ELSE NULL END, \
                 expected_delivery = COALESCE(?3, expected_delivery), \
                 delivered_at = CASE WHEN ?1 = 'delivered' THEN COALESCE(delivered_at, ?4) ELSE delivered_at END, \
                 updated_at = ?5 WHERE id = ?6",
            )
            .bind(event.kind.as_str())
            .bind(&event.reason)
            .bind(day_text(event.new_expected_delivery))
            .bind(event.at.date_naive().format("%Y-%m-%d").to_string())
            .bind(event.at.timestamp_millis())
            .bind(event.order_id.trim())
            .execute(&mut *tx)
            .await
            .map_err(query_err("apply order event"))?;
            (true, updated.rows_affected() > 0)
        } else {
            (false, false)
        };
        let sql = format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE event_id = ?");
        let row = sqlx::query(&sql).bind(&event_id).fetch_one(&mut *tx).await.map_err(query_err("read order event"))?;
        let stored = event_from_row(&row)?;
        tx.commit().await.map_err(query_err("commit order event"))?;
        Ok(RecordedEvent { event: stored, new, applied })
    }

    /// Events with an id above `after`, oldest first, at most `limit`, processed or not:
    /// a dispatcher pages through with the last id it saw.
    ///
    /// # Errors
    /// When the query fails or a row is corrupt.
    pub async fn events_after(&self, after: OrderEventId, limit: u32) -> Result<Vec<OrderEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE id > ? ORDER BY id LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(after.0)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list order events"))?;
        rows.iter().map(event_from_row).collect()
    }

    /// Events not yet marked processed, oldest first, at most `limit`: where a dispatcher
    /// resumes after a restart.
    ///
    /// # Errors
    /// When the query fails or a row is corrupt.
    pub async fn unprocessed_events(&self, limit: u32) -> Result<Vec<OrderEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE processed_at IS NULL ORDER BY id LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list pending order events"))?;
        rows.iter().map(event_from_row).collect()
    }

    /// Every event of one order, oldest first (for agents and for the bot's "what happened").
    ///
    /// # Errors
    /// When the query fails or a row is corrupt.
    pub async fn events_of(&self, order_id: &str) -> Result<Vec<OrderEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE order_id = ? ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(order_id.trim())
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list events of order"))?;
        rows.iter().map(event_from_row).collect()
    }

    /// Marks an event handled, at most once: true only for the call that marked it, so two
    /// dispatchers (or a retry) cannot both act on it. Unknown ids give false.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn mark_event_processed(&self, id: OrderEventId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE order_events SET processed_at = ? WHERE id = ? AND processed_at IS NULL")
            .bind(at.timestamp_millis())
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(query_err("mark order event processed"))?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl OrderSource for EmbeddedOrders {
    async fn get(&self, order_id: &str) -> Result<Option<Order>, OrderSourceError> {
        self.load(order_id).await.map_err(|e| match e {
            StoreError::Corrupt { .. } => OrderSourceError::Invalid(e.to_string()),
            other => OrderSourceError::Unavailable(other.to_string()),
        })
    }
}
