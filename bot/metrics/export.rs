//! CSV exports of conversations and ratings for a range, for spreadsheets and BI tools.
//! Cells that a spreadsheet would run as a formula are neutralised (OWASP CSV injection).

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

use crate::store::format_at;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the database failed.
    #[error("cannot read the database: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing the CSV failed.
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The CSV buffer could not be taken.
    #[error("cannot finish the CSV: {0}")]
    Finish(String),
}

/// A cell as text a spreadsheet shows instead of evaluating: values starting with `=`,
/// `+`, `-`, `@`, tab or carriage return get a leading apostrophe.
#[must_use]
pub fn safe_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() }
}

fn millis(at: Option<i64>) -> String {
    at.and_then(DateTime::from_timestamp_millis).map(format_at).unwrap_or_default()
}

/// Which conversations an export covers besides its range: the same filters as the
/// report (`docs/metrics.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Only chats a team queued or held.
    pub team: Option<String>,
    /// Only chats an agent held, replied in, transferred or closed.
    pub agent: Option<String>,
    /// Only chats in this language (`zh` matches `zh-Hans` and `zh-Hant`).
    pub lang: Option<String>,
}

/// The SQL condition on conversation `c` for [`ExportFilter`], with binds ?3 (the primary
/// language subtag, as the report matches languages), ?4 (team), ?5 (agent).
const FILTERED: &str = "(?3 IS NULL OR lower(CASE WHEN instr(COALESCE(c.lang, 'en'), '-') > 0 \
       THEN substr(COALESCE(c.lang, 'en'), 1, instr(COALESCE(c.lang, 'en'), '-') - 1) \
       ELSE COALESCE(c.lang, 'en') END) = lower(?3)) \
     AND (?4 IS NULL OR EXISTS (SELECT 1 FROM conversation_events f WHERE f.conversation_id = c.id AND f.team = ?4)) \
     AND (?5 IS NULL OR EXISTS (SELECT 1 FROM conversation_events f WHERE f.conversation_id = c.id AND f.agent = ?5))";

impl ExportFilter {
    fn primary_lang(&self) -> Option<String> {
        self.lang.as_deref().map(|l| l.split('-').next().unwrap_or(l).to_owned())
    }
}

/// Runs an export query whose binds are ?1 from, ?2 to and [`FILTERED`]'s.
async fn filtered_rows(
    pool: &SqlitePool,
    sql: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: &ExportFilter,
) -> Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error> {
    sqlx::query(sql)
        .bind(from.timestamp_millis())
        .bind(to.timestamp_millis())
        .bind(filter.primary_lang())
        .bind(&filter.team)
        .bind(&filter.agent)
        .fetch_all(pool)
        .await
}

fn finish(writer: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ExportError> {
    writer.into_inner().map_err(|e| ExportError::Finish(e.to_string()))
}

/// Conversations opened in `[from, to)`: one row each, oldest first.
///
/// # Errors
/// When the database cannot be read.
pub async fn conversations(
    pool: &SqlitePool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: &ExportFilter,
) -> Result<Vec<u8>, ExportError> {
    let sql = format!(
        "SELECT c.id, c.created_at, c.lang, c.page_url, c.owner_kind, c.handoff_reason, c.closed_at, \
           (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.sender = 'visitor') AS visitor_messages, \
           EXISTS (SELECT 1 FROM conversation_events e WHERE e.conversation_id = c.id \
                   AND e.kind = 'handoff_requested') AS handed_off, \
           (SELECT e.agent FROM conversation_events e WHERE e.conversation_id = c.id AND e.kind = 'assigned' \
            ORDER BY e.id DESC LIMIT 1) AS agent, \
           (SELECT e.team FROM conversation_events e WHERE e.conversation_id = c.id AND e.team IS NOT NULL \
            ORDER BY e.id DESC LIMIT 1) AS team, \
           (SELECT s.score FROM csat s WHERE s.conversation_id = c.id ORDER BY s.at DESC, s.id DESC LIMIT 1) AS rating, \
           (SELECT s.comment FROM csat s WHERE s.conversation_id = c.id ORDER BY s.at DESC, s.id DESC LIMIT 1) \
             AS rating_comment \
         FROM conversations c WHERE c.created_at >= ?1 AND c.created_at < ?2 AND {FILTERED} \
         ORDER BY c.created_at, c.id",
    );
    let rows = filtered_rows(pool, &sql, from, to, filter).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "conversation_id",
        "opened_at",
        "lang",
        "page_url",
        "status",
        "visitor_messages",
        "handed_off",
        "handoff_reason",
        "agent",
        "team",
        "closed_at",
        "rating",
        "rating_comment",
    ])?;
    for r in &rows {
        let text = |name: &str| r.get::<Option<String>, _>(name).map(|v| safe_cell(&v)).unwrap_or_default();
        out.write_record([
            r.get::<String, _>("id"),
            millis(r.get("created_at")),
            text("lang"),
            text("page_url"),
            r.get::<String, _>("owner_kind"),
            r.get::<i64, _>("visitor_messages").to_string(),
            if r.get::<bool, _>("handed_off") { "yes" } else { "no" }.to_owned(),
            text("handoff_reason"),
            text("agent"),
            text("team"),
            millis(r.get("closed_at")),
            r.get::<Option<i64>, _>("rating").map(|s| s.to_string()).unwrap_or_default(),
            text("rating_comment"),
        ])?;
    }
    finish(out)
}

/// Ratings given in `[from, to)`, oldest first, with who resolved the chat and what it
/// was about.
///
/// # Errors
/// When the database cannot be read.
pub async fn ratings(
    pool: &SqlitePool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: &ExportFilter,
) -> Result<Vec<u8>, ExportError> {
    let sql = format!(
        "SELECT s.conversation_id, s.at, s.score, s.comment, s.resolved_by, s.agent, s.team, \
                COALESCE(s.lang, c.lang) AS lang, s.topic, s.channel \
         FROM csat s JOIN conversations c ON c.id = s.conversation_id \
         WHERE s.at >= ?1 AND s.at < ?2 AND {FILTERED} ORDER BY s.at, s.id",
    );
    let rows = filtered_rows(pool, &sql, from, to, filter).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "conversation_id",
        "rated_at",
        "score",
        "comment",
        "resolved_by",
        "agent",
        "team",
        "lang",
        "topic",
        "channel",
    ])?;
    for r in &rows {
        let text = |name: &str| r.get::<Option<String>, _>(name).map(|v| safe_cell(&v)).unwrap_or_default();
        out.write_record([
            r.get::<String, _>("conversation_id"),
            millis(r.get("at")),
            r.get::<i64, _>("score").to_string(),
            text("comment"),
            r.get::<String, _>("resolved_by"),
            text("agent"),
            text("team"),
            text("lang"),
            text("topic"),
            r.get::<String, _>("channel"),
        ])?;
    }
    finish(out)
}

#[cfg(test)]
mod tests {
    use super::safe_cell;

    #[test]
    fn formulas_are_shown_not_run() {
        assert_eq!(safe_cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(safe_cell("+1"), "'+1");
        assert_eq!(safe_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(safe_cell("great, thanks"), "great, thanks");
    }
}
