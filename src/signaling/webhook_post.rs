//! The tokio driver of the call webhooks: takes the switchboard's call events and end-of-call
//! records from the hub, keeps them in a [`WebhookQueue`] and posts them one at a time, in
//! order, to the backend's `http://` URL, signed (see [`super::webhook::sign`]). A failed POST
//! (no connection, no answer in 5 s, or not 2xx) is tried again later; what does not fit in the
//! queue is dropped and counted in [`super::ServerStats`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::ServerStats;
use super::webhook::{CallEvent, CallRecordEvent, DEFAULT_CAPACITY, Delivery, WebhookQueue};

/// How long one POST may take, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Events on their way from the hub to the queue; the hub never waits, so beyond this they are
/// dropped and counted like those that do not fit in the queue.
const HANDOFF: usize = 1024;
/// The most of an answer read: its status line and headers.
const ANSWER_BYTES: usize = 16 * 1024;

/// Where the webhooks go.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `http://host:port/path`.
    pub url: String,
    /// The secret the bodies are signed with.
    pub secret: Vec<u8>,
    /// Bodies waiting at most (default [`DEFAULT_CAPACITY`]).
    pub capacity: usize,
}

impl WebhookConfig {
    /// POSTs to `url`, signed with `secret`, with the default queue.
    pub fn new(url: &str, secret: &[u8]) -> Self {
        Self {
            url: url.to_owned(),
            secret: secret.to_vec(),
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// What the hub hands over.
#[derive(Debug)]
pub enum Outgoing {
    /// A routing step.
    Event(CallEvent),
    /// A call's end-of-call record.
    Ended(CallRecordEvent),
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub authority: String,
    /// `/path?query`.
    pub path: String,
}

/// Reads `http://host[:port][/path]`; anything else says why.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!(
            "webhook URL {url:?}: only http:// is spoken here (put a TLS proxy in front for https)"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("webhook URL {url:?} names no host"));
    }
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok(Target {
        authority,
        path: path.to_owned(),
    })
}

/// Starts the driver; the hub sends it what the switchboard reports.
pub fn start(
    config: WebhookConfig,
    target: Target,
    stats: Arc<ServerStats>,
) -> mpsc::Sender<Outgoing> {
    let (sender, receiver) = mpsc::channel(HANDOFF);
    tokio::spawn(run(config, target, receiver, stats));
    sender
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn take(queue: &mut WebhookQueue, outgoing: Outgoing) {
    match outgoing {
        Outgoing::Event(event) => queue.push(&event, ""),
        Outgoing::Ended(record) => queue.push(&record, "call_end_status"),
    }
}

async fn run(
    config: WebhookConfig,
    target: Target,
    mut receiver: mpsc::Receiver<Outgoing>,
    stats: Arc<ServerStats>,
) {
    let mut queue = WebhookQueue::new(config.capacity);
    loop {
        let retry = queue.poll_timeout().map(|at| {
            let wait = Duration::from_millis(at.saturating_sub(unix_millis()));
            tokio::time::Instant::now() + wait
        });
        let idle = queue.is_empty() || retry.is_some();
        if idle {
            tokio::select! {
                outgoing = receiver.recv() => match outgoing {
                    Some(outgoing) => take(&mut queue, outgoing),
                    None => return,
                },
                () = sleep_until(retry) => {}
            }
        }
        // Everything handed over meanwhile joins the queue before the next POST.
        while let Ok(outgoing) = receiver.try_recv() {
            take(&mut queue, outgoing);
        }
        if let Some(delivery) = queue.poll_send(unix_millis()) {
            let taken = post(&target, &config.secret, &delivery).await;
            queue.handle_sent(unix_millis(), taken);
            if !taken {
                stats.webhook_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        let delivered = std::mem::take(&mut queue.delivered);
        let dropped = std::mem::take(&mut queue.dropped);
        stats
            .webhooks_delivered
            .fetch_add(delivered, Ordering::Relaxed);
        stats.webhooks_dropped.fetch_add(dropped, Ordering::Relaxed);
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// POSTs one body; whether the receiver answered 2xx in time.
async fn post(target: &Target, secret: &[u8], delivery: &Delivery) -> bool {
    let timestamp = unix_millis() / 1000;
    let signature = super::webhook::sign(secret, timestamp, &delivery.body);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nX-Callscope-Event-Id: {id}\r\n\
         X-Callscope-Timestamp: {timestamp}\r\nX-Callscope-Signature: sha256={signature}\r\n\
         Connection: close\r\n\r\n{body}",
        path = target.path,
        host = target.authority,
        length = delivery.body.len(),
        id = delivery.id,
        body = delivery.body,
    );
    let exchange = async {
        let mut stream = TcpStream::connect(&target.authority).await.ok()?;
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        let mut chunk = [0_u8; 2048];
        loop {
            let read = stream.read(&mut chunk).await.ok()?;
            answer.extend_from_slice(&chunk[..read]);
            match read_answer(&answer) {
                Answer::Status(code) => return Some(code),
                Answer::Partial if read > 0 && answer.len() < ANSWER_BYTES => {}
                Answer::Partial | Answer::Malformed => return None,
            }
        }
    };
    matches!(
        tokio::time::timeout(POST_TIMEOUT, exchange).await,
        Ok(Some(200..=299))
    )
}

/// What a webhook receiver's answer says so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Its status line and headers are whole: the status code.
    Status(u16),
    /// More is needed to tell.
    Partial,
    /// Not an HTTP answer.
    Malformed,
}

/// Reads what a webhook receiver has answered so far.
pub fn read_answer(answer: &[u8]) -> Answer {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(answer) {
        Ok(httparse::Status::Complete(_)) => {
            response.code.map_or(Answer::Malformed, Answer::Status)
        }
        Ok(httparse::Status::Partial) => Answer::Partial,
        Err(_) => Answer::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_as_its_status_once_its_headers_are_whole() {
        assert_eq!(
            read_answer(b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"),
            Answer::Status(204)
        );
        assert_eq!(read_answer(b"HTTP/1.1 200 OK\r\nServ"), Answer::Partial);
        assert_eq!(read_answer(b""), Answer::Partial);
        assert_eq!(read_answer(b"\x00\xffnot http\r\n\r\n"), Answer::Malformed);
    }

    #[test]
    fn an_http_url_reads_and_anything_else_says_why() {
        assert_eq!(
            parse_url("http://127.0.0.1:9000/hooks/calls?x=1"),
            Ok(Target {
                authority: "127.0.0.1:9000".to_owned(),
                path: "/hooks/calls?x=1".to_owned()
            })
        );
        assert_eq!(
            parse_url("http://backend").map(|target| target.authority),
            Ok("backend:80".to_owned())
        );
        assert!(parse_url("https://backend/").is_err_and(|why| why.contains("TLS proxy")));
        assert!(parse_url("http:///x").is_err());
    }
}
