//! The signaling connection: the WebSocket itself, and the pure [`ReconnectPolicy`] that says
//! when to try again and how long a connected call may outlive an outage.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::model::MonoTime;
use crate::signaling::{ClientMessage, ServerMessage, decode_server, encode};

/// The first retry comes this soon after a connection is lost.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Retries are at most this far apart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connected call survives a signaling outage this long at most.
pub const OUTAGE_GRACE: Duration = Duration::from_secs(10);
/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// When to reconnect, and when an outage has lasted too long for a call: no IO, time passed in.
#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    backoff: Duration,
    outage_since: Option<MonoTime>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            backoff: FIRST_BACKOFF,
            outage_since: None,
        }
    }
}

impl ReconnectPolicy {
    /// Logged in again: the next outage starts from the first backoff.
    pub fn online(&mut self) {
        self.backoff = FIRST_BACKOFF;
        self.outage_since = None;
    }

    /// The connection was lost (or an attempt failed) at `now`: how long to wait before the
    /// next attempt. Each failure doubles the wait, up to [`MAX_BACKOFF`].
    pub fn lost(&mut self, now: MonoTime) -> Duration {
        self.outage_since.get_or_insert(now);
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        wait
    }

    /// When a connected call stops surviving the current outage, if there is one.
    pub fn grace_deadline(&self) -> Option<MonoTime> {
        self.outage_since.map(|since| since + OUTAGE_GRACE)
    }

    /// Whether the connection is down now.
    pub fn in_outage(&self) -> bool {
        self.outage_since.is_some()
    }
}

/// An open signaling connection.
pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Socket").finish_non_exhaustive()
    }
}

/// What came in on the connection.
#[derive(Debug)]
pub enum Incoming {
    /// A message from the server.
    Message(ServerMessage),
    /// A frame that is not a server message.
    Malformed(String),
    /// The connection closed.
    Closed(String),
}

impl Socket {
    /// Connects to `url`, giving up after [`CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, String> {
        // Small messages, sent at once: an accept and the answer right behind it must not wait
        // for the first one's acknowledgement (Nagle's algorithm would hold it up to 40 ms).
        let config = crate::signaling::client_websocket_config();
        let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok((stream, _))) => Ok(Self { stream }),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("the server did not answer in time".to_owned()),
        }
    }

    /// Sends one message; an error means the connection is gone.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), String> {
        self.stream
            .send(Message::text(encode(message)))
            .await
            .map_err(|error| error.to_string())
    }

    /// The next thing that comes in.
    pub async fn next(&mut self) -> Incoming {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    return match decode_server(text.as_str()) {
                        Ok(message) => Incoming::Message(message),
                        Err(error) => Incoming::Malformed(error.to_string()),
                    };
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Incoming::Closed("the server closed the connection".to_owned());
                }
                Some(Err(error)) => return Incoming::Closed(error.to_string()),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{FIRST_BACKOFF, MAX_BACKOFF, OUTAGE_GRACE, ReconnectPolicy};
    use crate::model::MonoTime;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_once_online() {
        let mut policy = ReconnectPolicy::default();
        let now = MonoTime::from_millis(1000);
        assert_eq!(policy.lost(now), FIRST_BACKOFF);
        assert_eq!(policy.lost(now), FIRST_BACKOFF * 2);
        for _ in 0..10 {
            policy.lost(now);
        }
        assert_eq!(policy.lost(now), MAX_BACKOFF);
        assert_eq!(policy.grace_deadline(), Some(now + OUTAGE_GRACE));
        policy.online();
        assert!(!policy.in_outage());
        assert_eq!(policy.lost(now + Duration::from_mins(1)), FIRST_BACKOFF);
    }

    #[test]
    fn the_grace_counts_from_the_first_failure_of_an_outage() {
        let mut policy = ReconnectPolicy::default();
        policy.lost(MonoTime::from_millis(0));
        policy.lost(MonoTime::from_millis(5000));
        assert_eq!(
            policy.grace_deadline(),
            Some(MonoTime::from_millis(0) + OUTAGE_GRACE)
        );
    }
}
