//! The transport's door: each connection's place in [`Admission`], the bytes it may send before
//! it logs in (counted as they are read, so a stranger is closed before it is buffered), and
//! the eviction or deadline that closes a pending one.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::admission::{Admission, AdmissionLimits, ConnectionId, Refusal};
use super::server::ServerStats;

/// Bytes a connection may send before it logs in: its WebSocket handshake and its log-in
/// (a few hundred bytes each) with room to spare; one byte more closes it.
pub const BYTES_BEFORE_LOGIN: usize = 16 * 1024;

/// Admission and the places it gave out.
#[derive(Debug)]
pub struct Gate {
    admission: Admission,
    places: HashMap<ConnectionId, Weak<Place>>,
    epoch: Instant,
}

impl Gate {
    /// An open gate, its clock starting now.
    pub fn new(limits: AdmissionLimits) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            admission: Admission::new(limits),
            places: HashMap::new(),
            epoch: Instant::now(),
        }))
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn places(&self, ids: &[ConnectionId]) -> Vec<Arc<Place>> {
        ids.iter()
            .filter_map(|id| self.places.get(id)?.upgrade())
            .collect()
    }

    fn publish(&self, stats: &ServerStats) {
        stats
            .connections
            .store(self.admission.connections(), Ordering::Relaxed);
        stats
            .pending
            .store(self.admission.pending(), Ordering::Relaxed);
        let counts = self.admission.counts();
        stats.admitted.store(counts.admitted, Ordering::Relaxed);
        stats.evicted.store(counts.evicted, Ordering::Relaxed);
        stats.expired.store(counts.expired, Ordering::Relaxed);
    }
}

fn lock(gate: &Mutex<Gate>) -> std::sync::MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tells the connections of `places` they are out. Called without the gate's lock: the last
/// handle of a place may go here, and its drop takes the lock.
fn evict(places: Vec<Arc<Place>>) {
    for place in places {
        place.out.notify_one();
    }
}

/// Admits connection `id` from `ip`, evicting a pending one if admission says so.
pub fn enter(
    gate: &Arc<Mutex<Gate>>,
    id: ConnectionId,
    ip: IpAddr,
    stats: &Arc<ServerStats>,
) -> Result<Arc<Place>, Refusal> {
    let (place, victims) = {
        let mut guard = lock(gate);
        let now = guard.now();
        let evicted = guard.admission.admit(id, ip, now)?;
        let place = Arc::new(Place {
            gate: Arc::clone(gate),
            id,
            stats: Arc::clone(stats),
            logged_in: AtomicBool::new(false),
            read_before_login: AtomicUsize::new(0),
            out: Notify::new(),
        });
        guard.places.insert(id, Arc::downgrade(&place));
        guard.publish(stats);
        (place, guard.places(&Vec::from_iter(evicted)))
    };
    evict(victims);
    Ok(place)
}

/// Closes the pending connections past their deadline.
pub fn sweep(gate: &Mutex<Gate>, stats: &ServerStats) {
    let late = {
        let mut guard = lock(gate);
        let now = guard.now();
        let late = guard.admission.expire(now);
        guard.publish(stats);
        guard.places(&late)
    };
    evict(late);
}

/// One connection's place: released when the last handle goes.
#[derive(Debug)]
pub struct Place {
    gate: Arc<Mutex<Gate>>,
    id: ConnectionId,
    stats: Arc<ServerStats>,
    logged_in: AtomicBool,
    read_before_login: AtomicUsize,
    /// Rung when the connection is evicted or late: it must close.
    out: Notify,
}

impl Place {
    /// Waits until the connection must close (at once if that was decided already).
    pub async fn closed_by_gate(&self) {
        self.out.notified().await;
    }

    /// It sent a frame before logging in (its log-in, if it is a user's): left alone a moment
    /// for the answer.
    pub fn sent_before_login(&self) {
        if self.logged_in.load(Ordering::Acquire) {
            return;
        }
        let mut gate = lock(&self.gate);
        let now = gate.now();
        gate.admission.shield(self.id, now);
    }

    /// The WebSocket handshake is done.
    pub fn handshake_done(&self) {
        let mut gate = lock(&self.gate);
        gate.admission.handshake_done(self.id);
    }

    /// Its user logged in: it keeps its slot, and reads without the allowance.
    pub fn logged_in(&self) {
        if self.logged_in.swap(true, Ordering::AcqRel) {
            return;
        }
        self.release_pending_bytes();
        let mut gate = lock(&self.gate);
        gate.admission.logged_in(self.id);
        gate.publish(&self.stats);
    }

    /// Takes the bytes read before log-in off the server's count.
    fn release_pending_bytes(&self) {
        let read = self.read_before_login.swap(0, Ordering::AcqRel);
        self.stats.pending_bytes.fetch_sub(read, Ordering::AcqRel);
    }

    /// Counts `bytes` just read; false when they go past the allowance before log-in.
    fn charge(&self, bytes: usize) -> bool {
        if self.logged_in.load(Ordering::Acquire) {
            return true;
        }
        // The server's count first: a release that comes between the two takes no more off
        // it than was put on.
        self.stats.pending_bytes.fetch_add(bytes, Ordering::AcqRel);
        let read = self.read_before_login.fetch_add(bytes, Ordering::AcqRel) + bytes;
        read <= BYTES_BEFORE_LOGIN
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // Also what a read counted as its user was logging in.
        self.release_pending_bytes();
        let mut gate = lock(&self.gate);
        gate.admission.close(self.id);
        gate.places.remove(&self.id);
        gate.publish(&self.stats);
    }
}

/// A stream whose reads count against its place's allowance before log-in.
#[derive(Debug)]
pub struct Metered<S> {
    inner: S,
    place: Arc<Place>,
}

impl<S> Metered<S> {
    /// `inner`, read on `place`'s account.
    pub fn new(inner: S, place: Arc<Place>) -> Self {
        Self { inner, place }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buf);
        let read = buf.filled().len() - before;
        if read > 0 && !self.place.charge(read) {
            return Poll::Ready(Err(io::Error::other(format!(
                "more than {BYTES_BEFORE_LOGIN} bytes before logging in"
            ))));
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}
