//! `Query`: the filters of the timeline (kind, call, user, text, time range), in memory and in SQL.

use std::fmt::Write as _;

use crate::event::{CallbackKind, KindSet};

use super::TimelineEntry;

/// Which entries to return. Every filter that is set must match; an empty query matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only these kinds (all kinds when `None`).
    pub kinds: Option<KindSet>,
    /// Only this call.
    pub call_id: Option<String>,
    /// Only entries recorded by this user.
    pub user_id: Option<String>,
    /// Only entries of this origin (this client, another participant, the server).
    pub origin: Option<super::Origin>,
    /// Only entries whose kind, call id, user id or summary contains this text, ignoring case.
    pub text: Option<String>,
    /// Only entries at or after this wall-clock time (ms since the Unix epoch).
    pub since_millis: Option<u64>,
    /// Only entries at or before this wall-clock time (ms since the Unix epoch).
    pub until_millis: Option<u64>,
    /// At most this many entries (the newest when more match).
    pub limit: Option<usize>,
}

impl Query {
    /// A query that matches everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Restricts the query to one kind.
    #[must_use]
    pub fn kind(mut self, kind: CallbackKind) -> Self {
        let mut kinds = self.kinds.unwrap_or(KindSet::EMPTY);
        kinds.insert(kind);
        self.kinds = Some(kinds);
        self
    }

    /// Restricts the query to one call.
    #[must_use]
    pub fn call(mut self, call_id: impl Into<String>) -> Self {
        self.call_id = Some(call_id.into());
        self
    }

    /// Restricts the query to entries containing `text`.
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// A matcher for this query (its text lowercased once).
    pub fn matcher(&self) -> Matcher<'_> {
        Matcher {
            query: self,
            needle: self.text.as_ref().map(|text| text.to_ascii_lowercase()),
        }
    }
}

/// Tests entries against a [`Query`] without allocating per entry.
#[derive(Debug)]
pub struct Matcher<'query> {
    query: &'query Query,
    needle: Option<String>,
}

impl Matcher<'_> {
    /// Whether `entry` passes every filter of the query, given its searchable text lowercased
    /// (see [`searchable_lowercase`]; pass `""` when [`Matcher::searches_text`] is false).
    pub fn matches_indexed(&self, entry: &TimelineEntry, haystack: &str) -> bool {
        self.passes_fields(entry)
            && self
                .needle
                .as_deref()
                .is_none_or(|needle| haystack.contains(needle))
    }

    /// Whether the query filters by text (and so needs each entry's searchable text).
    pub fn searches_text(&self) -> bool {
        self.needle.is_some()
    }

    /// Whether an entry of `kind` can match at all (checked without touching the entry).
    pub fn admits(&self, kind: CallbackKind) -> bool {
        self.query.kinds.is_none_or(|kinds| kinds.contains(kind))
    }

    fn passes_fields(&self, entry: &TimelineEntry) -> bool {
        let query = self.query;
        if query
            .kinds
            .is_some_and(|kinds| !kinds.contains(entry.kind()))
        {
            return false;
        }
        if query
            .call_id
            .as_deref()
            .is_some_and(|call_id| entry.call_id.as_deref() != Some(call_id))
        {
            return false;
        }
        if query
            .user_id
            .as_deref()
            .is_some_and(|user_id| entry.user_id != user_id)
            || query.origin.is_some_and(|origin| entry.origin != origin)
        {
            return false;
        }
        !(query
            .since_millis
            .is_some_and(|since| entry.at.wall_millis < since)
            || query
                .until_millis
                .is_some_and(|until| entry.at.wall_millis > until))
    }
}

/// The searchable text of an entry, lowercased (ASCII), as [`Matcher::matches_indexed`] takes it.
pub fn searchable_lowercase(entry: &TimelineEntry) -> Box<str> {
    let mut text = String::with_capacity(96);
    write_searchable(entry, &mut text);
    text.make_ascii_lowercase();
    text.into_boxed_str()
}

/// The text the text filter searches: kind, call id, user id and summary, one line.
pub fn write_searchable(entry: &TimelineEntry, out: &mut String) {
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{} {} {} {}",
        entry.kind().as_str(),
        entry.call_id.as_deref().unwrap_or(""),
        entry.user_id,
        entry.event
    );
}
