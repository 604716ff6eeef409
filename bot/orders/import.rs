//! Orders from a CSV file (`supportbot orders import`, and the sample orders loaded on first
//! start). Every bad row is reported with its line and what is wrong; the good rows still
//! import, so one typo does not hold back a whole export.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::validate::parse_date;
use super::{EmbeddedOrders, Order, OrderInput, OrderItem, OrderStatus};
use crate::store::StoreError;

/// Columns an import file must have.
pub const REQUIRED_COLUMNS: [&str; 5] = ["id", "status", "email", "postcode", "placed_at"];

/// Columns it may have besides.
pub const OPTIONAL_COLUMNS: [&str; 8] = [
    "customer_name",
    "carrier",
    "tracking_number",
    "tracking_url",
    "expected_delivery",
    "delivered_at",
    "delay_reason",
    "items",
];

/// One row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file (1 is the header).
    pub line: u64,
    /// The row's order number, when it has one.
    pub order_id: Option<String>,
    /// What is wrong, field by field.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.order_id {
            Some(id) if !id.is_empty() => write!(f, "line {} ({id}): {}", self.line, self.message),
            _ => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// What a file held: the valid orders (with their line) and the rows at fault.
#[derive(Debug, Default)]
pub struct ParsedCsv {
    /// Orders ready to store, with the line each came from.
    pub orders: Vec<(u64, Order)>,
    /// Rows that were not valid.
    pub errors: Vec<RowError>,
}

/// Why a file could not be read at all (as opposed to a bad row).
#[derive(Debug, thiserror::Error)]
pub enum CsvFileError {
    /// The header row is missing, has an unknown column or lacks a required one.
    #[error("header: {0}")]
    Header(String),
    /// Reading failed (IO, not UTF-8).
    #[error("cannot read the file: {0}")]
    Read(#[from] csv::Error),
}

/// Reads an order export. `now` stamps `updated_at`.
///
/// # Errors
/// When the header row is unusable; bad rows are in [`ParsedCsv::errors`] instead.
pub fn parse_csv(reader: impl Read, now: DateTime<Utc>) -> Result<ParsedCsv, CsvFileError> {
    let mut csv = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(reader);
    let headers = csv.headers()?.clone();
    let mut column = HashMap::new();
    for (i, name) in headers.iter().enumerate() {
        let name = name.trim_start_matches('\u{feff}').trim().to_ascii_lowercase();
        if !REQUIRED_COLUMNS.contains(&name.as_str()) && !OPTIONAL_COLUMNS.contains(&name.as_str()) {
            return Err(CsvFileError::Header(format!(
                "unknown column {name:?}; columns are {}, {}",
                REQUIRED_COLUMNS.join(", "),
                OPTIONAL_COLUMNS.join(", ")
            )));
        }
        if column.insert(name.clone(), i).is_some() {
            return Err(CsvFileError::Header(format!("column {name:?} appears twice")));
        }
    }
    let missing: Vec<_> = REQUIRED_COLUMNS.iter().filter(|c| !column.contains_key(**c)).copied().collect();
    if !missing.is_empty() {
        return Err(CsvFileError::Header(format!("missing column(s) {}", missing.join(", "))));
    }
    let mut parsed = ParsedCsv::default();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    for record in csv.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                parsed.errors.push(RowError { line, order_id: None, message: e.to_string() });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let row = Row { column: &column, record: &record };
        let id = row.cell("id").to_owned();
        if record.len() != headers.len() {
            let message = format!("has {} cells, the header has {}", record.len(), headers.len());
            parsed.errors.push(RowError { line, order_id: Some(id), message });
            continue;
        }
        match row.to_order(&id, now) {
            Ok(order) => {
                let key = order.id.to_ascii_lowercase();
                if let Some(first) = first_line_of.get(&key) {
                    let message = format!("order {} is already on line {first}", order.id);
                    parsed.errors.push(RowError { line, order_id: Some(id), message });
                } else {
                    first_line_of.insert(key, line);
                    parsed.orders.push((line, order));
                }
            }
            Err(problems) => parsed.errors.push(RowError { line, order_id: Some(id), message: problems.join("; ") }),
        }
    }
    Ok(parsed)
}

/// One data row, read by column name.
struct Row<'r> {
    column: &'r HashMap<String, usize>,
    record: &'r csv::StringRecord,
}

impl<'r> Row<'r> {
    /// The trimmed cell, empty when the column is absent.
    fn cell(&self, name: &str) -> &'r str {
        self.column.get(name).and_then(|&i| self.record.get(i)).unwrap_or("")
    }

    fn to_order(&self, id: &str, now: DateTime<Utc>) -> Result<Order, Vec<String>> {
        row_to_order(&|name| self.cell(name), id, now)
    }
}

fn row_to_order<'r>(cell: &dyn Fn(&str) -> &'r str, id: &str, now: DateTime<Utc>) -> Result<Order, Vec<String>> {
    let mut problems = Vec::new();
    let optional = |name: &str| Some(cell(name).to_owned()).filter(|v| !v.is_empty());
    let status = OrderStatus::parse(cell("status"));
    if status.is_none() {
        let names: Vec<_> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        problems.push(format!("status: {:?} is not one of {}", cell("status"), names.join(", ")));
    }
    let mut date = |name: &str, required: bool| {
        let text = cell(name);
        if text.is_empty() {
            if required {
                problems.push(format!("{name}: must not be empty"));
            }
            return None;
        }
        let day = parse_date(text);
        if day.is_none() {
            problems.push(format!("{name}: {text:?} is not a date like 2026-03-14"));
        }
        day
    };
    let placed_at = date("placed_at", true);
    let expected_delivery = date("expected_delivery", false);
    let delivered_at = date("delivered_at", false);
    let items = parse_items(cell("items")).unwrap_or_else(|e| {
        problems.push(format!("items: {e}"));
        Vec::new()
    });
    // Check the other fields even when these failed, with stand-ins, so a row's problems
    // are all reported at once.
    let input = OrderInput {
        id: None,
        status: status.unwrap_or(OrderStatus::Placed),
        email: cell("email").to_owned(),
        postcode: cell("postcode").to_owned(),
        customer_name: optional("customer_name"),
        carrier: optional("carrier"),
        tracking_number: optional("tracking_number"),
        tracking_url: optional("tracking_url"),
        placed_at: placed_at.unwrap_or(NaiveDate::MIN),
        expected_delivery,
        delivered_at,
        delay_reason: optional("delay_reason"),
        items,
        updated_at: None,
    };
    match input.into_order(id, now) {
        Ok(order) if problems.is_empty() => Ok(order),
        Ok(_) => Err(problems),
        Err(fields) => {
            problems.extend(fields.iter().map(|f| format!("{}: {}", f.field, f.message)));
            Err(problems)
        }
    }
}

/// Parses `"2x Cast iron skillet; 1x Apron"`; an item without a count is one of it.
///
/// # Errors
/// Which item is malformed.
pub fn parse_items(text: &str) -> Result<Vec<OrderItem>, String> {
    let mut items = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let digits = part.chars().take_while(char::is_ascii_digit).count();
        // "2x Apron", "2 x Apron", "2 × Apron"; not "2xl shirt" (a name that starts with x).
        let after_x = part[digits..]
            .trim_start()
            .strip_prefix(['x', 'X', '×'])
            .filter(|name| name.is_empty() || name.starts_with(char::is_whitespace))
            .map(str::trim_start);
        let (quantity, name) = match (digits, after_x) {
            (0, _) => (1, part),
            (_, Some(name)) => {
                let quantity = part[..digits]
                    .parse::<u32>()
                    .ok()
                    .filter(|q| *q >= 1)
                    .ok_or_else(|| format!("{part:?}: the quantity must be a whole number from 1"))?;
                (quantity, name)
            }
            (_, None) => (1, part),
        };
        if name.is_empty() {
            return Err(format!("{part:?} has a quantity but no product name"));
        }
        items.push(OrderItem { name: name.to_owned(), quantity });
    }
    Ok(items)
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Orders that were new.
    pub created: usize,
    /// Orders that replaced a stored one with the same number.
    pub updated: usize,
    /// Rows not imported.
    pub errors: Vec<RowError>,
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// IO error.
        source: std::io::Error,
    },
    /// The header row is unusable.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: CsvFileError,
    },
    /// Storing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports a CSV file into our table: good rows are stored (replacing orders with the same
/// number), bad ones reported.
///
/// # Errors
/// When the file cannot be read, its header is unusable, or the database fails.
pub async fn import_file(
    orders: &EmbeddedOrders,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let bytes = tokio::fs::read(path).await.map_err(|source| ImportError::Open { path: path.to_owned(), source })?;
    let parsed =
        parse_csv(bytes.as_slice(), now).map_err(|source| ImportError::File { path: path.to_owned(), source })?;
    let mut report = ImportReport { errors: parsed.errors, ..ImportReport::default() };
    for (_, order) in &parsed.orders {
        if orders.upsert(order).await? {
            report.created += 1;
        } else {
            report.updated += 1;
        }
    }
    report.errors.sort_by_key(|e| e.line);
    Ok(report)
}

/// Loads `path` when our table is empty: the demo's sample orders on a first start. A missing
/// file is not an error (the release binary may run elsewhere); bad rows are logged.
///
/// # Errors
/// When the database fails or the file exists but cannot be read.
pub async fn seed_if_empty(orders: &EmbeddedOrders, path: &Path) -> Result<Option<ImportReport>, ImportError> {
    if orders.count().await? > 0 {
        return Ok(None);
    }
    if !tokio::fs::try_exists(path).await.unwrap_or(false) {
        tracing::info!(file = %path.display(), "no sample orders file; the orders table stays empty");
        return Ok(None);
    }
    let report = import_file(orders, path, Utc::now()).await?;
    for e in &report.errors {
        tracing::warn!(file = %path.display(), "sample order not loaded: {e}");
    }
    tracing::info!(file = %path.display(), orders = report.created, "loaded sample orders into the empty orders table");
    Ok(Some(report))
}
