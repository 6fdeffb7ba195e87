//! callscope: a native calling kit that makes every call-state callback visible.
//!
//! # Example
//! Bind two of the five callbacks, switch one off, and play the scripted demo call:
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use callscope::event::CallbackKind;
//! use callscope::kit::CallKit;
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
//! Dependencies point down this list; a module imports only modules above it.
//! - [`model`]: the vocabulary: statuses, media types, end reasons, error codes, sources,
//!   monotonic time.
//! - [`event`]: the one [`event::Event`] enum (the five component callbacks and the engine
//!   events), its field-less twin [`event::CallbackKind`], and [`event::Emitted`].
//! - [`call`]: the sans-IO call core. [`call::CallMachine`] knows every status and legal
//!   transition of the call contract; time and network messages are inputs, events and
//!   signaling actions are outputs. It records and dispatches nothing.
//! - [`timeline`]: every occurrence as a [`timeline::TimelineEntry`], in memory
//!   ([`timeline::Timeline`], read by sequence number) and in SQLite ([`timeline::Store`]);
//!   queries, export, and the contract checker ([`timeline::check`]).
//! - [`kit`]: [`kit::CallKit`], where closures are bound, [`kit::Switches`] consulted and every
//!   event recorded into the timeline.
//! - [`signaling`]: the WebSocket protocol (whose call messages are the core's actions and
//!   signals), UserSig tokens, the sans-IO [`signaling::switchboard::Switchboard`] and the tokio
//!   [`signaling::Server`] around it.
//! - [`media`]: WebRTC, codecs, devices and frame slots. It takes commands and reports
//!   [`media::MediaEvent`]s; it never decides a call's fate. Its set-up decisions are sans-IO
//!   ([`media::negotiation`], [`media::mesh`]), and so are the links impaired on purpose
//!   ([`media::impair`], applied at the wire end of each connection by [`media::link`]) and the
//!   reordering of video packets behind a gap ([`media::reorder`]).
//! - [`engine`]: the sans-IO [`engine::Driver`] (call core + media + kit glue, given `now`), the
//!   client task that carries out its outputs, the demo peers' scripts, and the engine thread.
//! - [`ui`]: the eframe window; it only draws what the engine reported and sends commands.
//! - [`demo`]: a scripted call through the core, with no network.
//!
//! # Threading model
//! The sans-IO cores run on whichever thread drives them and never block. [`kit::CallKit`] is
//! `Send + Sync`: any thread may dispatch, and switches change atomically from any thread. A
//! dispatch runs the bound closure on the dispatching thread, then appends to the in-memory
//! timeline under a short lock and hands the entry through a bounded channel (spilling to an
//! overflow list when full) to the `timeline-encoder` thread, which computes its search text and
//! JSON, and on to the `timeline-writer` thread, which commits batches to SQLite. No caller
//! waits on disk.
//!
//! The `engine` thread owns the tokio runtime and is the only place with network IO. The UI
//! thread sends it `EngineCommand`s through a bounded channel, reads the newest state from a
//! latest-value slot and drains notices with `try_recv` once per frame; the engine wakes the
//! UI after each report. Media threads (`video-send`, `audio-send`, `video-decode`, the audio
//! devices') wait on wake-ups, never on sleeps, and report through one bounded queue whose
//! drops are counted and said.

pub mod call;
pub mod demo;
pub mod engine;
pub mod event;
pub mod kit;
pub mod media;
pub mod model;
pub mod signaling;
pub mod timeline;
pub mod ui;

#[cfg(test)]
mod layering {
    //! The layout's one rule, checked: a module imports only modules above it in `# Layout`.

    use std::path::Path;

    /// Each layer and what it may import.
    const LAYERS: [(&str, &[&str]); 8] = [
        ("model", &[]),
        ("event", &["model"]),
        ("call", &["model", "event"]),
        ("timeline", &["model", "event"]),
        ("kit", &["model", "event", "timeline"]),
        ("signaling", &["model", "event", "call", "timeline", "kit"]),
        ("media", &["model", "event", "timeline"]),
        (
            "engine",
            &[
                "model",
                "event",
                "call",
                "timeline",
                "kit",
                "signaling",
                "media",
            ],
        ),
    ];

    fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn every_module_imports_only_the_layers_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut violations = Vec::new();
        for (layer, allowed) in LAYERS {
            let mut files = Vec::new();
            sources(&src.join(layer), &mut files);
            let single = src.join(format!("{layer}.rs"));
            if single.exists() {
                files.push(single);
            }
            assert!(!files.is_empty(), "no sources for {layer}");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                for (at, _) in text.match_indices("crate::") {
                    let used: String = text[at + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if used != layer && !allowed.contains(&used.as_str()) {
                        violations.push(format!("{} uses crate::{used}", file.display()));
                    }
                }
            }
        }
        assert!(violations.is_empty(), "{violations:#?}");
    }
}
