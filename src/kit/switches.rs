//! `Switches`: one on/off switch per callback kind, shared and changeable from any thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::{CallbackKind, KindSet};

/// The run-time switches of every callback and engine event; all on by default.
///
/// Cloning shares the same switches. A switched-off kind is not delivered to its closure but is
/// still recorded in the timeline as `suppressed`.
#[derive(Debug, Clone)]
pub struct Switches {
    enabled: Arc<AtomicU64>,
}

impl Switches {
    /// Every switch on.
    pub fn all_on() -> Self {
        Self::from_set(KindSet::all())
    }

    /// On exactly for the kinds in `enabled`.
    pub fn from_set(enabled: KindSet) -> Self {
        Self {
            enabled: Arc::new(AtomicU64::new(enabled.bits())),
        }
    }

    /// Whether `kind` is delivered.
    pub fn is_enabled(&self, kind: CallbackKind) -> bool {
        self.snapshot().contains(kind)
    }

    /// Turns `kind` on or off.
    pub fn set(&self, kind: CallbackKind, enabled: bool) {
        let bit = KindSet::from_iter([kind]).bits();
        if enabled {
            self.enabled.fetch_or(bit, Ordering::AcqRel);
        } else {
            self.enabled.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Turns every kind on or off.
    pub fn set_all(&self, enabled: bool) {
        let bits = if enabled {
            KindSet::all()
        } else {
            KindSet::EMPTY
        };
        self.enabled.store(bits.bits(), Ordering::Release);
    }

    /// The kinds switched on now.
    pub fn snapshot(&self) -> KindSet {
        KindSet::from_bits(self.enabled.load(Ordering::Acquire))
    }
}

impl Default for Switches {
    fn default() -> Self {
        Self::all_on()
    }
}
