//! The timeline's queries in SQL, and reading rows back into entries.

use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use crate::event::{CallbackKind, Event};

use crate::model::Source;

use super::{Delivery, Origin, Query, StoreError, TimelineEntry, Timestamp};

const COLUMNS: &str = "seq, at_ms, mono_us, call_id, user_id, source, kind, delivery, handler_us, \
     event, run_id, origin, session, clock_error_us";

/// Runs `query` against the entries table.
pub(super) fn query(
    connection: &Connection,
    query: &Query,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let (clauses, values) = where_clause(query);
    let newest_first = query.limit.is_some();
    let mut sql = format!("SELECT {COLUMNS} FROM entries WHERE {clauses} ORDER BY seq");
    if let Some(limit) = query.limit {
        // Writing into a String cannot fail.
        let _ = write!(sql, " DESC LIMIT {limit}");
    }
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        entries.push(entry_from_row(row)?);
    }
    if newest_first {
        entries.reverse();
    }
    Ok(entries)
}

fn where_clause(query: &Query) -> (String, Vec<Value>) {
    let mut clauses = vec!["1 = 1".to_owned()];
    let mut values = Vec::new();
    if let Some(kinds) = query.kinds {
        let marks: Vec<&str> = kinds.iter().map(|_| "?").collect();
        clauses.push(format!("kind IN ({})", marks.join(", ")));
        values.extend(
            kinds
                .iter()
                .map(|kind| Value::Text(kind.as_str().to_owned())),
        );
        if kinds.is_empty() {
            clauses.push("0 = 1".to_owned());
        }
    }
    if let Some(call_id) = &query.call_id {
        clauses.push("call_id = ?".to_owned());
        values.push(Value::Text(call_id.clone()));
    }
    if let Some(user_id) = &query.user_id {
        clauses.push("user_id = ?".to_owned());
        values.push(Value::Text(user_id.clone()));
    }
    if let Some(origin) = query.origin {
        clauses.push("origin = ?".to_owned());
        values.push(Value::Text(origin.as_str().to_owned()));
    }
    if let Some(text) = &query.text {
        // The same text the in-memory filter searches; LIKE ignores ASCII case.
        clauses.push("search LIKE ? ESCAPE '\\'".to_owned());
        values.push(Value::Text(format!("%{}%", escape_like(text))));
    }
    if let Some(since) = query.since_millis {
        clauses.push("at_ms >= ?".to_owned());
        values.push(Value::Integer(i64::try_from(since).unwrap_or(i64::MAX)));
    }
    if let Some(until) = query.until_millis {
        clauses.push("at_ms <= ?".to_owned());
        values.push(Value::Integer(i64::try_from(until).unwrap_or(i64::MAX)));
    }
    (clauses.join(" AND "), values)
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

fn entry_from_row(row: &Row<'_>) -> Result<TimelineEntry, StoreError> {
    let seq: u64 = row.get(0)?;
    let damaged = |message: String| StoreError::Damaged { seq, message };
    let source: String = row.get(5)?;
    let kind: String = row.get(6)?;
    let delivery: String = row.get(7)?;
    let event: String = row.get(9)?;
    let kind: CallbackKind = kind.parse().map_err(damaged)?;
    let event: Event = serde_json::from_str(&event).map_err(|error| damaged(error.to_string()))?;
    if event.kind() != kind {
        return Err(damaged(format!("kind {kind} does not match its event")));
    }
    Ok(TimelineEntry {
        seq,
        run: row.get(10)?,
        at: Timestamp {
            wall_millis: row.get(1)?,
            mono_micros: row.get(2)?,
        },
        call_id: row.get(3)?,
        user_id: row.get(4)?,
        source: Source::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == source)
            .ok_or_else(|| damaged(format!("unknown source {source:?}")))?,
        event,
        delivery: [Delivery::Delivered, Delivery::Suppressed]
            .into_iter()
            .find(|candidate| candidate.as_str() == delivery)
            .ok_or_else(|| damaged(format!("unknown delivery {delivery:?}")))?,
        handler_micros: row.get(8)?,
        origin: {
            let origin: String = row.get(11)?;
            Origin::ALL
                .into_iter()
                .find(|candidate| candidate.as_str() == origin)
                .ok_or_else(|| damaged(format!("unknown origin {origin:?}")))?
        },
        session: row.get(12)?,
        clock_error_micros: row.get(13)?,
    })
}
