//! callscope: a native calling kit that makes every call-state callback visible.
//!
//! # Example
//! Bind two of the five callbacks, switch one off, and play the scripted demo call:
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use callscope::callbacks::{CallKit, CallbackKind};
//! use callscope::timeline::{Delivery, Query};
//!
//! let ended = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&ended);
//! let kit = CallKit::builder()
//!     .user("alice")
//!     .after_calling(move |_summary| {
//!         counter.fetch_add(1, Ordering::SeqCst);
//!     })
//!     .status_changed(|change| println!("{} -> {}", change.old_status, change.new_status))
//!     .build();
//! kit.switches().set(CallbackKind::StatusChanged, false);
//! callscope::demo::play(&kit);
//! assert_eq!(ended.load(Ordering::SeqCst), 2);
//! let statuses = kit.timeline().query(&Query::all().kind(CallbackKind::StatusChanged));
//! assert!(statuses.iter().all(|entry| entry.delivery == Delivery::Suppressed));
//! ```
//!
//! # Layout
//! - [`call`]: the sans-IO call core. [`call::CallMachine`] knows every status and legal
//!   transition of the call contract; time and network messages are inputs, callbacks and
//!   signaling actions are outputs. No threads, sockets or clocks.
//! - [`callbacks`]: the one [`callbacks::Event`] enum (the five component callbacks and the
//!   engine events), its field-less twin [`callbacks::CallbackKind`], run-time
//!   [`callbacks::Switches`], and [`callbacks::CallKit`] where closures are bound.
//! - [`timeline`]: every occurrence as a [`timeline::TimelineEntry`], in memory
//!   ([`timeline::Timeline`]) and in SQLite ([`timeline::Store`]); queries and export.
//! - [`signaling`]: the WebSocket protocol, UserSig tokens, the sans-IO
//!   [`signaling::switchboard::Switchboard`] and the tokio [`signaling::Server`].
//! - [`engine`]: the engine thread (tokio runtime, signaling client, embedded server, demo
//!   peers) behind bounded crossbeam channels.
//! - [`ui`]: the eframe window; it only draws and sends commands.
//! - [`demo`]: a scripted call through the core, with no network.
//!
//! # Threading model
//! The call core runs on whichever thread drives it and never blocks. [`callbacks::CallKit`] is
//! `Send + Sync`: any thread may dispatch, and switches change atomically from any thread. A
//! dispatch runs the bound closure on the dispatching thread, then appends to the in-memory
//! timeline under a short lock and hands the entry through a bounded channel (spilling to an
//! overflow list when full) to the `timeline-encoder` thread, which computes its search text and
//! JSON, and on to the `timeline-writer` thread, which commits batches to SQLite. No caller
//! waits on disk.
//!
//! The `engine` thread owns the tokio runtime and is the only place with network IO; the UI
//! thread sends it `EngineCommand`s and drains `EngineMsg`s with `try_recv` once per frame, and
//! the engine calls `request_repaint` after each report. All channels are bounded.

pub mod call;
pub mod callbacks;
pub mod demo;
pub mod engine;
pub mod media;
pub mod signaling;
pub mod timeline;
pub mod ui;
