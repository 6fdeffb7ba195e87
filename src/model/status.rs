//! The eight call statuses, their exact strings, and the table of legal transitions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::MediaType;

/// What `statusChanged` reports: TUICallKit's `STATUS` constants, serialized as their strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    /// `idle`: no call.
    Idle,
    /// `be-invited`: an incoming call is ringing here.
    BeInvited,
    /// `dialing-c2c`: our outgoing 1:1 call is ringing.
    DialingC2c,
    /// `dialing-group`: our outgoing group call is ringing.
    DialingGroup,
    /// `calling-c2c-audio`: connected, 1:1, audio only.
    CallingC2cAudio,
    /// `calling-c2c-video`: connected, 1:1, video.
    CallingC2cVideo,
    /// `calling-group-audio`: connected, group, audio only.
    CallingGroupAudio,
    /// `calling-group-video`: connected, group, video.
    CallingGroupVideo,
}

impl CallStatus {
    /// Every status, in the order of the contract.
    pub const ALL: [Self; 8] = [
        Self::Idle,
        Self::BeInvited,
        Self::DialingC2c,
        Self::DialingGroup,
        Self::CallingC2cAudio,
        Self::CallingC2cVideo,
        Self::CallingGroupAudio,
        Self::CallingGroupVideo,
    ];

    /// The exact string of the contract (`calling-c2c-video`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::BeInvited => "be-invited",
            Self::DialingC2c => "dialing-c2c",
            Self::DialingGroup => "dialing-group",
            Self::CallingC2cAudio => "calling-c2c-audio",
            Self::CallingC2cVideo => "calling-c2c-video",
            Self::CallingGroupAudio => "calling-group-audio",
            Self::CallingGroupVideo => "calling-group-video",
        }
    }

    /// The dialing status for an outgoing call.
    pub const fn dialing(group: bool) -> Self {
        if group {
            Self::DialingGroup
        } else {
            Self::DialingC2c
        }
    }

    /// The connected status for a call of this shape.
    pub const fn calling(group: bool, media: MediaType) -> Self {
        match (group, media) {
            (false, MediaType::Audio) => Self::CallingC2cAudio,
            (false, MediaType::Video) => Self::CallingC2cVideo,
            (true, MediaType::Audio) => Self::CallingGroupAudio,
            (true, MediaType::Video) => Self::CallingGroupVideo,
        }
    }

    /// Whether the call is connected (`calling-*`).
    pub const fn is_calling(self) -> bool {
        matches!(
            self,
            Self::CallingC2cAudio
                | Self::CallingC2cVideo
                | Self::CallingGroupAudio
                | Self::CallingGroupVideo
        )
    }

    /// Whether the call is ringing, on either side.
    pub const fn is_ringing(self) -> bool {
        matches!(
            self,
            Self::BeInvited | Self::DialingC2c | Self::DialingGroup
        )
    }

    /// Whether `self → to` is a legal transition of the contract, section 1.
    pub const fn can_become(self, to: Self) -> bool {
        use CallStatus::{
            BeInvited, CallingC2cAudio, CallingC2cVideo, CallingGroupAudio, CallingGroupVideo,
            DialingC2c, DialingGroup, Idle,
        };
        match (self, to) {
            // Any status may end; an idle machine has nothing to end, so idle → idle is refused.
            (Idle, Idle) => false,
            (_, Idle)
            | (Idle, DialingC2c | DialingGroup | BeInvited)
            | (DialingC2c, CallingC2cAudio | CallingC2cVideo)
            | (DialingGroup, CallingGroupAudio | CallingGroupVideo)
            | (
                BeInvited,
                CallingC2cAudio | CallingC2cVideo | CallingGroupAudio | CallingGroupVideo,
            )
            | (CallingC2cAudio, CallingC2cVideo)
            | (CallingC2cVideo, CallingC2cAudio)
            | (CallingGroupAudio, CallingGroupVideo)
            | (CallingGroupVideo, CallingGroupAudio) => true,
            _ => false,
        }
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| format!("unknown status {text:?}"))
    }
}
