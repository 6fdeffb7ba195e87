//! callscope: a native calling kit that makes every call-state callback visible.
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
//!
//! # Threading model
//! The call core runs on whichever thread drives it and never blocks. [`callbacks::CallKit`] is
//! `Send + Sync`: any thread may dispatch, and switches change atomically from any thread. A
//! dispatch runs the bound closure on the dispatching thread, then appends to the in-memory
//! timeline under a short lock and hands the entry to the `timeline-writer` thread through a
//! bounded channel (spilling to an overflow list when full), so no caller waits on disk.

pub mod call;
pub mod callbacks;
pub mod demo;
pub mod engine;
pub mod signaling;
pub mod timeline;
pub mod ui;
