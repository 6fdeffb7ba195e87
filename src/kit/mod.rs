//! The kit: [`CallKit`], where closures are bound to the five component callbacks, the
//! run-time [`Switches`] are consulted, and every occurrence is recorded into the timeline.
//! Imports the event vocabulary and the timeline; it knows nothing of calls or the network.

mod replay;
mod switches;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crate::event::{CallSummary, Emitted, Event};
use crate::model::{CallError, CallStatus, CallType, MonoTime, Source, ViewMode};
use crate::timeline::{Clock, Delivery, Origin, Timeline, TimelineEntry};

pub use replay::{MAX_GAP, Pace, Replayed, replay};
pub use switches::Switches;

/// What `statusChanged` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    /// The status before.
    pub old_status: CallStatus,
    /// The status now.
    pub new_status: CallStatus,
}

/// What `kickedOut` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KickInfo {
    /// The device or session that took over.
    pub by: String,
}

type BeforeCallingFn = dyn Fn(CallType, Option<&CallError>) + Send + Sync;
type AfterCallingFn = dyn Fn(&CallSummary) + Send + Sync;
type MinimizedFn = dyn Fn(ViewMode, ViewMode) + Send + Sync;
type KickedOutFn = dyn Fn(&KickInfo) + Send + Sync;
type StatusChangedFn = dyn Fn(&StatusChange) + Send + Sync;
type ObserverFn = dyn Fn(&Event) + Send + Sync;

#[derive(Default)]
struct Handlers {
    before_calling: Option<Box<BeforeCallingFn>>,
    after_calling: Option<Box<AfterCallingFn>>,
    on_minimized: Option<Box<MinimizedFn>>,
    kicked_out: Option<Box<KickedOutFn>>,
    status_changed: Option<Box<StatusChangedFn>>,
    observers: Vec<Box<ObserverFn>>,
}

impl Handlers {
    fn invoke(&self, event: &Event) {
        match event {
            Event::BeforeCalling { call_type, error } => {
                if let Some(handler) = &self.before_calling {
                    handler(*call_type, error.as_ref());
                }
            }
            Event::AfterCalling(summary) => {
                if let Some(handler) = &self.after_calling {
                    handler(summary);
                }
            }
            Event::Minimized { old, new } => {
                if let Some(handler) = &self.on_minimized {
                    handler(*old, *new);
                }
            }
            Event::KickedOut { by } => {
                if let Some(handler) = &self.kicked_out {
                    handler(&KickInfo { by: by.clone() });
                }
            }
            Event::StatusChanged {
                old_status,
                new_status,
            } => {
                if let Some(handler) = &self.status_changed {
                    handler(&StatusChange {
                        old_status: *old_status,
                        new_status: *new_status,
                    });
                }
            }
            _ => {}
        }
        for observer in &self.observers {
            observer(event);
        }
    }
}

/// Binds closures to callbacks: `CallKit::builder().before_calling(|kind, err| …).build()`.
#[must_use]
pub struct CallKitBuilder {
    user_id: String,
    handlers: Handlers,
    switches: Switches,
    timeline: Option<Timeline>,
    clock: Option<Clock>,
    origin: Origin,
}

impl CallKitBuilder {
    /// The local user whose entries this kit records.
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self
    }

    /// Binds `beforeCalling(type, error)`.
    pub fn before_calling(
        mut self,
        handler: impl Fn(CallType, Option<&CallError>) + Send + Sync + 'static,
    ) -> Self {
        self.handlers.before_calling = Some(Box::new(handler));
        self
    }

    /// Binds `afterCalling(summary)`.
    pub fn after_calling(mut self, handler: impl Fn(&CallSummary) + Send + Sync + 'static) -> Self {
        self.handlers.after_calling = Some(Box::new(handler));
        self
    }

    /// Binds `onMinimized(old, new)`.
    pub fn on_minimized(
        mut self,
        handler: impl Fn(ViewMode, ViewMode) + Send + Sync + 'static,
    ) -> Self {
        self.handlers.on_minimized = Some(Box::new(handler));
        self
    }

    /// Binds `kickedOut(info)`.
    pub fn kicked_out(mut self, handler: impl Fn(&KickInfo) + Send + Sync + 'static) -> Self {
        self.handlers.kicked_out = Some(Box::new(handler));
        self
    }

    /// Binds `statusChanged({old_status, new_status})`.
    pub fn status_changed(
        mut self,
        handler: impl Fn(&StatusChange) + Send + Sync + 'static,
    ) -> Self {
        self.handlers.status_changed = Some(Box::new(handler));
        self
    }

    /// Adds an observer that gets every delivered event, engine events included.
    pub fn on_event(mut self, handler: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.handlers.observers.push(Box::new(handler));
        self
    }

    /// Uses these switches (shared with whoever else holds a clone).
    pub fn switches(mut self, switches: Switches) -> Self {
        self.switches = switches;
        self
    }

    /// Records into this timeline (an in-memory one otherwise).
    pub fn timeline(mut self, timeline: Timeline) -> Self {
        self.timeline = Some(timeline);
        self
    }

    /// Stamps entries with this clock (one started now otherwise).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Marks the entries as another participant's trace (a demo peer recording into our
    /// timeline), or the server's; this client's own by default.
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// The kit.
    pub fn build(self) -> CallKit {
        CallKit {
            inner: Arc::new(KitInner {
                user_id: self.user_id,
                handlers: self.handlers,
                switches: self.switches,
                timeline: self.timeline.unwrap_or_else(Timeline::in_memory),
                clock: self.clock.unwrap_or_default(),
                origin: self.origin,
            }),
        }
    }
}

/// The bound callbacks, their switches and the timeline they record into.
///
/// Cloning shares everything; dispatch works from any thread.
#[derive(Clone)]
pub struct CallKit {
    inner: Arc<KitInner>,
}

struct KitInner {
    user_id: String,
    handlers: Handlers,
    switches: Switches,
    timeline: Timeline,
    clock: Clock,
    origin: Origin,
}

impl std::fmt::Debug for CallKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallKit")
            .field("user_id", &self.inner.user_id)
            .field("switches", &self.inner.switches.snapshot())
            .finish_non_exhaustive()
    }
}

impl CallKit {
    /// Starts binding closures.
    pub fn builder() -> CallKitBuilder {
        CallKitBuilder {
            user_id: String::new(),
            handlers: Handlers::default(),
            switches: Switches::all_on(),
            timeline: None,
            clock: None,
            origin: Origin::Local,
        }
    }

    /// The local user.
    pub fn user_id(&self) -> &str {
        &self.inner.user_id
    }

    /// The switches, one per kind.
    pub fn switches(&self) -> &Switches {
        &self.inner.switches
    }

    /// The timeline entries are recorded into.
    pub fn timeline(&self) -> &Timeline {
        &self.inner.timeline
    }

    /// The clock entries are stamped with.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Delivers `event` to its closure if its switch is on, and records it either way.
    pub fn dispatch(
        &self,
        at: MonoTime,
        call_id: Option<&str>,
        source: Source,
        event: Event,
    ) -> Arc<TimelineEntry> {
        let enabled = self.inner.switches.is_enabled(event.kind());
        let (delivery, handler_micros) = if enabled {
            let started = Instant::now();
            // A panicking closure is the caller's bug; it must not take the engine down with it.
            let _ = catch_unwind(AssertUnwindSafe(|| self.inner.handlers.invoke(&event)));
            (Delivery::Delivered, started.elapsed().as_micros() as u64)
        } else {
            (Delivery::Suppressed, 0)
        };
        self.inner.timeline.append(TimelineEntry {
            seq: 0,
            run: 0,
            at: self.inner.clock.stamp(at),
            call_id: call_id.map(str::to_owned),
            user_id: self.inner.user_id.clone(),
            source,
            event,
            delivery,
            handler_micros,
            origin: self.inner.origin,
            session: None,
            clock_error_micros: None,
        })
    }

    /// Records what another side of the call recorded (the server's routing, a participant's
    /// callback), as `user_id` of `origin`, at `at` on our clock (known within
    /// `clock_error_micros`, if it came through the server's clock): into the timeline only,
    /// no handler of ours runs.
    pub fn record_other(
        &self,
        at: MonoTime,
        clock_error_micros: Option<u64>,
        call_id: Option<&str>,
        origin: Origin,
        user_id: &str,
        event: Event,
    ) -> Arc<TimelineEntry> {
        self.inner.timeline.append(TimelineEntry {
            seq: 0,
            run: 0,
            at: self.inner.clock.stamp(at),
            call_id: call_id.map(str::to_owned),
            user_id: user_id.to_owned(),
            source: Source::Remote,
            event,
            delivery: Delivery::Delivered,
            handler_micros: 0,
            origin,
            session: None,
            clock_error_micros,
        })
    }

    /// Records an entry another participant's kit recorded and shared, as it is (its time
    /// already on our clock): into the timeline only, no handler of ours runs.
    pub fn record_shared(&self, entry: TimelineEntry) -> Arc<TimelineEntry> {
        self.inner.timeline.append(entry)
    }

    /// Dispatches one event the call core emitted.
    pub fn deliver(&self, emitted: Emitted) -> Arc<TimelineEntry> {
        self.dispatch(
            emitted.at,
            emitted.call_id.as_deref(),
            emitted.source,
            emitted.event,
        )
    }
}
