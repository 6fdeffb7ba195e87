//! `Mesh`: which peer connections a call needs (one per other participant), who offers to
//! whom, and what each connection must be told when membership changes. Pure bookkeeping: the
//! media session carries out its [`MeshStep`]s.

use std::collections::BTreeMap;

use crate::model::MediaType;

use super::negotiation::Side;

/// The call as the media engine needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// Who placed the call.
    pub caller: String,
    /// Whether the local user is in the call (placed it, or accepted).
    pub local_joined: bool,
    /// Everyone else in or invited into the call, and whether they joined.
    pub members: Vec<(String, bool)>,
    /// Audio or video.
    pub media: MediaType,
}

/// Whether `me` sends the offer to `other`: the caller offers to everyone; between two
/// callees the smaller user id offers, so both sides agree without asking.
pub fn offers_to(me: &str, other: &str, caller: &str) -> bool {
    me == caller || (other != caller && me < other)
}

/// One thing the media session must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshStep {
    /// The local user joined: open the devices.
    Join,
    /// Open a connection to `user_id`.
    Open {
        /// The participant.
        user_id: String,
        /// Offer or answer.
        side: Side,
        /// Yields in a glare (the larger user id).
        polite: bool,
    },
    /// Tell the connection to `user_id` who is in the call now.
    Membership {
        /// The participant.
        user_id: String,
        /// The local user is in the call.
        local_joined: bool,
        /// The participant is in the call.
        remote_joined: bool,
    },
    /// Close the connection to `user_id`.
    Close {
        /// The participant.
        user_id: String,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Link {
    remote_joined: bool,
    told: Option<(bool, bool)>,
}

/// The connections of one call.
#[derive(Debug)]
pub struct Mesh {
    me: String,
    joined: bool,
    /// Who else is in the call, and whether they joined, as last synced.
    members: BTreeMap<String, bool>,
    links: BTreeMap<String, Link>,
}

impl Mesh {
    /// No connection yet, for the local user `me`.
    pub fn new(me: &str) -> Self {
        Self {
            me: me.to_owned(),
            joined: false,
            members: BTreeMap::new(),
            links: BTreeMap::new(),
        }
    }

    /// Whether there is a connection to `user_id`.
    pub fn has_link(&self, user_id: &str) -> bool {
        self.links.contains_key(user_id)
    }

    /// Brings the connections in line with the call: new members get one (when we offer to
    /// them, once we have joined; the caller offers to a ringing callee at once, anyone else
    /// once the other has joined, as the server relays nothing else), members who left lose
    /// theirs, and changes of membership are told.
    pub fn sync(&mut self, view: &CallView) -> Vec<MeshStep> {
        let mut steps = Vec::new();
        if view.local_joined && !self.joined {
            steps.push(MeshStep::Join);
        }
        self.joined = view.local_joined;
        self.members = view.members.iter().cloned().collect();
        let caller = self.me == view.caller;
        for (user_id, remote_joined) in &view.members {
            if self.joined
                && (caller || *remote_joined)
                && !self.links.contains_key(user_id)
                && offers_to(&self.me, user_id, &view.caller)
            {
                steps.push(self.open(user_id, Side::Offerer));
            }
            if let Some(link) = self.links.get_mut(user_id) {
                link.remote_joined = *remote_joined;
            }
        }
        let gone: Vec<String> = self
            .links
            .keys()
            .filter(|user_id| !view.members.iter().any(|(member, _)| member == *user_id))
            .cloned()
            .collect();
        for user_id in gone {
            self.links.remove(&user_id);
            steps.push(MeshStep::Close { user_id });
        }
        self.tell(&mut steps);
        steps
    }

    /// A description arrived from `from`: a connection answers it if there is none yet.
    pub fn remote_description(&mut self, from: &str) -> Vec<MeshStep> {
        let mut steps = Vec::new();
        if !self.links.contains_key(from) {
            steps.push(self.open(from, Side::Answerer));
        }
        self.tell(&mut steps);
        steps
    }

    fn open(&mut self, user_id: &str, side: Side) -> MeshStep {
        let link = Link {
            remote_joined: self.members.get(user_id).copied().unwrap_or(false),
            told: None,
        };
        self.links.insert(user_id.to_owned(), link);
        MeshStep::Open {
            user_id: user_id.to_owned(),
            side,
            polite: self.me.as_str() > user_id,
        }
    }

    fn tell(&mut self, steps: &mut Vec<MeshStep>) {
        for (user_id, link) in &mut self.links {
            let now = (self.joined, link.remote_joined);
            if link.told != Some(now) {
                link.told = Some(now);
                steps.push(MeshStep::Membership {
                    user_id: user_id.clone(),
                    local_joined: now.0,
                    remote_joined: now.1,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CallView, Mesh, MeshStep, offers_to};
    use crate::media::negotiation::Side;
    use crate::model::MediaType;

    fn view(caller: &str, local_joined: bool, members: &[(&str, bool)]) -> CallView {
        CallView {
            caller: caller.to_owned(),
            local_joined,
            members: members
                .iter()
                .map(|(user, joined)| ((*user).to_owned(), *joined))
                .collect(),
            media: MediaType::Video,
        }
    }

    #[test]
    fn the_caller_offers_to_everyone_and_callees_by_the_smaller_id() {
        assert!(offers_to("alice", "bob", "alice"));
        assert!(!offers_to("bob", "alice", "alice"));
        assert!(offers_to("bob", "carol", "alice"));
        assert!(!offers_to("carol", "bob", "alice"));
    }

    #[test]
    fn a_caller_opens_offers_at_once_and_tells_each_answer() {
        let mut mesh = Mesh::new("alice");
        let steps = mesh.sync(&view("alice", true, &[("bob", false)]));
        assert_eq!(steps[0], MeshStep::Join);
        assert!(matches!(
            &steps[1],
            MeshStep::Open { user_id, side: Side::Offerer, polite: false } if user_id == "bob"
        ));
        // Nothing changed: nothing to do.
        assert!(
            mesh.sync(&view("alice", true, &[("bob", false)]))
                .is_empty()
        );
        let accepted = mesh.sync(&view("alice", true, &[("bob", true)]));
        assert_eq!(
            accepted,
            vec![MeshStep::Membership {
                user_id: "bob".into(),
                local_joined: true,
                remote_joined: true
            }]
        );
        let left = mesh.sync(&view("alice", true, &[]));
        assert_eq!(
            left,
            vec![MeshStep::Close {
                user_id: "bob".into()
            }]
        );
    }

    #[test]
    fn a_callee_offers_to_another_callee_only_once_it_joined() {
        let mut mesh = Mesh::new("bob");
        // Bob is in alice's call; carol is invited in and rings.
        let ringing = mesh.sync(&view("alice", true, &[("alice", true), ("carol", false)]));
        assert!(
            !ringing
                .iter()
                .any(|step| matches!(step, MeshStep::Open { .. }))
        );
        let joined = mesh.sync(&view("alice", true, &[("alice", true), ("carol", true)]));
        assert!(joined.iter().any(|step| matches!(
            step,
            MeshStep::Open { user_id, side: Side::Offerer, .. } if user_id == "carol"
        )));
    }

    #[test]
    fn a_ringing_callee_answers_only_what_arrives_and_joins_on_accept() {
        let mut mesh = Mesh::new("bob");
        assert!(
            mesh.sync(&view("alice", false, &[("alice", true)]))
                .is_empty()
        );
        let steps = mesh.remote_description("alice");
        assert!(matches!(
            &steps[0],
            MeshStep::Open {
                side: Side::Answerer,
                polite: true,
                ..
            }
        ));
        // The caller is in the call; the callee is not yet.
        assert!(matches!(
            &steps[1],
            MeshStep::Membership {
                local_joined: false,
                remote_joined: true,
                ..
            }
        ));
        let accepted = mesh.sync(&view("alice", true, &[("alice", true)]));
        assert_eq!(accepted[0], MeshStep::Join);
        assert!(matches!(
            &accepted[1],
            MeshStep::Membership {
                local_joined: true,
                remote_joined: true,
                ..
            }
        ));
    }
}
