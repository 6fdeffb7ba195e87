//! Call webhooks for an app's backend: every routing step of every call as a Tencent-named
//! event (`caller_start_call`, `callee_receive_call`, `callee_accept_call`, `caller_call_end`,
//! …) and, when a call is over, its end-of-call record (`CallResult`: `not_answer`, `reject`,
//! `call_busy`, `cancel`, `normal_end`, `interrupt`, with its start, accept and end times).
//!
//! [`WebhookQueue`] is sans-IO: it holds the bodies to POST, in order, at most
//! the capacity it was made with (beyond that new ones are dropped and counted), hands out
//! one at a time, and after a failure waits longer each time before trying it again (0.5 s,
//! doubling, at most 30 s). Order is kept: nothing is sent while the one before it has not
//! been taken. Each body carries an `EventId`, so a receiver can tell a repeat (a request that
//! arrived though its answer did not) from a new event. [`sign`] is the signature a receiver
//! checks.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// The first wait after a failed POST; it doubles with each failure in a row.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between tries.
pub const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// Bodies waiting by default.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One routing step of a call, as the backend hears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallEvent {
    /// `caller_start_call`, `callee_accept_call`, …
    pub event_type: String,
    /// The call.
    pub call_id: String,
    /// Who the step is about.
    pub user_id: String,
    /// Who placed the call.
    pub caller: String,
    /// `audio` or `video`.
    pub media_type: String,
    /// Unix milliseconds.
    pub event_ts: u64,
}

/// How a call ended, as Tencent's end-of-call record says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallResult {
    /// Nobody answered before the ringing timeout.
    NotAnswer,
    /// The callee rejected.
    Reject,
    /// The callee was in another call.
    CallBusy,
    /// The caller cancelled before an answer.
    Cancel,
    /// It connected and was hung up.
    NormalEnd,
    /// A connection was lost and the server ended it.
    Interrupt,
}

/// The end-of-call record of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallRecordEvent {
    /// The call.
    pub call_id: String,
    /// Who placed it.
    pub caller: String,
    /// How it ended.
    pub call_result: CallResult,
    /// When it was placed, Unix milliseconds.
    pub start_call_ts: u64,
    /// When it was first accepted (0: never).
    pub accept_ts: u64,
    /// When it ended.
    pub end_ts: u64,
    /// Everyone who was in it or invited into it, the caller too.
    pub total_num: usize,
    /// `audio` or `video`.
    pub media_type: String,
}

/// One body to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its number, from 1, in the order the events happened.
    pub id: u64,
    /// The JSON body.
    pub body: String,
}

/// The bodies waiting to be posted, and when to try the first again.
#[derive(Debug)]
pub struct WebhookQueue {
    waiting: VecDeque<Delivery>,
    capacity: usize,
    next_id: u64,
    /// The first is being posted.
    in_flight: bool,
    /// Failures in a row of the first.
    failures: u32,
    /// Not before then (Unix milliseconds).
    retry_at_millis: u64,
    /// Events that did not fit and were dropped.
    pub dropped: u64,
    /// Bodies the receiver took.
    pub delivered: u64,
}

impl WebhookQueue {
    /// An empty queue holding at most `capacity` bodies.
    pub fn new(capacity: usize) -> Self {
        Self {
            waiting: VecDeque::new(),
            capacity: capacity.max(1),
            next_id: 1,
            in_flight: false,
            failures: 0,
            retry_at_millis: 0,
            dropped: 0,
            delivered: 0,
        }
    }

    /// Bodies waiting, the one in flight too.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Queues an event (`event_type` names the end-of-call record, which has no field of its
    /// own for it); when full it is dropped and counted.
    pub fn push(&mut self, body: &impl Serialize, event_type: &str) {
        if self.waiting.len() >= self.capacity {
            self.dropped += 1;
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut value = serde_json::to_value(body).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("EventId".to_owned(), id.into());
            object
                .entry("EventType")
                .or_insert_with(|| event_type.into());
        }
        self.waiting.push_back(Delivery {
            id,
            body: value.to_string(),
        });
    }

    /// The body to POST now, if one is due and none is in flight.
    pub fn poll_send(&mut self, now_millis: u64) -> Option<Delivery> {
        if self.in_flight || now_millis < self.retry_at_millis {
            return None;
        }
        let first = self.waiting.front()?.clone();
        self.in_flight = true;
        Some(first)
    }

    /// The POST of the first body ended: taken (a 2xx answer) or not.
    pub fn handle_sent(&mut self, now_millis: u64, taken: bool) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        if taken {
            self.waiting.pop_front();
            self.delivered += 1;
            self.failures = 0;
            self.retry_at_millis = 0;
            return;
        }
        let wait = FIRST_RETRY
            .saturating_mul(1 << self.failures.min(16))
            .min(LONGEST_RETRY);
        self.failures = self.failures.saturating_add(1);
        self.retry_at_millis = now_millis + wait.as_millis() as u64;
    }

    /// When [`WebhookQueue::poll_send`] has something next, if it waits for a retry.
    pub fn poll_timeout(&self) -> Option<u64> {
        (!self.in_flight && !self.waiting.is_empty() && self.retry_at_millis > 0)
            .then_some(self.retry_at_millis)
    }
}

/// The signature of a body sent at `timestamp` (Unix seconds): hex HMAC-SHA256 of
/// `"{timestamp}.{body}"` keyed with the webhook secret. Sent as
/// `X-Callscope-Signature: sha256=…` beside `X-Callscope-Timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in mac.finalize().into_bytes() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> CallEvent {
        CallEvent {
            event_type: name.to_owned(),
            call_id: "c-1".to_owned(),
            user_id: "alice".to_owned(),
            caller: "alice".to_owned(),
            media_type: "video".to_owned(),
            event_ts: 1,
        }
    }

    #[test]
    fn bodies_go_one_at_a_time_in_order_and_a_failed_one_is_tried_again_later_and_later() {
        let mut queue = WebhookQueue::new(10);
        queue.push(&event("caller_start_call"), "");
        queue.push(&event("callee_receive_call"), "");
        let first = queue.poll_send(0).expect("due");
        assert_eq!(first.id, 1);
        assert!(first.body.contains("\"EventType\":\"caller_start_call\""));
        assert!(first.body.contains("\"EventId\":1"));
        assert_eq!(queue.poll_send(0), None, "one in flight at a time");
        // The receiver is down: 0.5 s, 1 s, 2 s … up to 30 s between tries, the same body.
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            queue.handle_sent(now, false);
            let next = queue.poll_timeout().expect("a retry");
            waits.push(next - now);
            assert_eq!(queue.poll_send(next - 1), None);
            now = next;
            assert_eq!(queue.poll_send(now).expect("retried").id, 1);
        }
        assert_eq!(
            waits,
            [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        queue.handle_sent(now, true);
        let second = queue.poll_send(now).expect("the next at once");
        assert_eq!(second.id, 2);
        queue.handle_sent(now, true);
        assert!(queue.is_empty());
        assert_eq!(queue.delivered, 2);
    }

    #[test]
    fn a_full_queue_drops_and_counts_what_does_not_fit() {
        let mut queue = WebhookQueue::new(2);
        for _ in 0..5 {
            queue.push(&event("caller_start_call"), "");
        }
        assert_eq!((queue.len(), queue.dropped), (2, 3));
    }

    #[test]
    fn an_end_of_call_record_names_its_type_and_the_signature_covers_time_and_body() {
        let mut queue = WebhookQueue::new(2);
        let record = CallRecordEvent {
            call_id: "c-1".to_owned(),
            caller: "alice".to_owned(),
            call_result: CallResult::NotAnswer,
            start_call_ts: 1,
            accept_ts: 0,
            end_ts: 30_001,
            total_num: 2,
            media_type: "audio".to_owned(),
        };
        queue.push(&record, "call_end_status");
        let body = queue.poll_send(0).expect("due").body;
        assert!(body.contains("\"EventType\":\"call_end_status\""), "{body}");
        assert!(body.contains("\"CallResult\":\"not_answer\""), "{body}");
        let signature = sign(b"secret", 1_700_000_000, &body);
        assert_eq!(signature.len(), 64);
        assert_ne!(signature, sign(b"secret", 1_700_000_001, &body));
        assert_ne!(signature, sign(b"other", 1_700_000_000, &body));
    }
}
