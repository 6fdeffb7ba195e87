//! `Impairer`: what a link does to packets on purpose, as `tc netem` would: random or bursty
//! loss, added delay with jitter, a bandwidth cap, and "cut for N s". Sans-IO: it is given each
//! packet's size and time and says whether the packet is dropped or when it arrives; its
//! randomness comes from a seed, so a test sees the same link every time.
//!
//! Bursty loss follows the Gilbert model: a good state that loses nothing and a bad state that
//! loses everything, with the chances of switching chosen so that the loss is the one asked for
//! and a burst lasts `burst` packets on average. Jitter never reorders packets (each arrives no
//! sooner than the one before it), and the cap queues at most [`MAX_QUEUE`] of traffic before
//! it drops.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::model::MonoTime;

/// The longest delay or jitter a link takes (anything longer is an outage: cut it instead).
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// The most a capped link queues before it drops the tail.
pub const MAX_QUEUE: Duration = Duration::from_millis(300);

/// What a link does to the packets that cross it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Packets lost, in % (0 to 100).
    pub loss_pct: f64,
    /// Mean length of a loss burst, in packets (1: independent losses).
    pub burst: f64,
    /// Added one-way delay.
    pub delay: Duration,
    /// Each packet's delay varies by up to this much either way.
    pub jitter: Duration,
    /// Bandwidth cap in kbit/s (`None`: no cap).
    pub rate_kbit: Option<u64>,
}

impl Default for Impairment {
    /// A clear link.
    fn default() -> Self {
        Self {
            loss_pct: 0.0,
            burst: 1.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_kbit: None,
        }
    }
}

impl Impairment {
    /// Whether it does anything at all.
    pub fn is_none(&self) -> bool {
        self.loss_pct <= 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.rate_kbit.is_none()
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.loss_pct > 0.0 {
            parts.push(format!("loss={}%", self.loss_pct));
            if self.burst > 1.0 {
                parts.push(format!("burst={}", self.burst));
            }
        }
        if !self.delay.is_zero() {
            parts.push(format!("delay={}ms", self.delay.as_millis()));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}ms", self.jitter.as_millis()));
        }
        if let Some(rate) = self.rate_kbit {
            parts.push(format!("rate={rate}kbit"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// Why an impairment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "impairment {given:?}: {reason} (like loss=5%,burst=3,delay=80ms,jitter=20ms,rate=500kbit)"
)]
pub struct ImpairmentError {
    given: String,
    reason: String,
}

fn millis(value: &str) -> Option<Duration> {
    let number = value.strip_suffix("ms").unwrap_or(value);
    number.parse::<u64>().ok().map(Duration::from_millis)
}

impl FromStr for Impairment {
    type Err = ImpairmentError;

    /// `loss=5%,burst=3,delay=80ms,jitter=20ms,rate=500kbit` (any of them, in any order), or
    /// `none`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ImpairmentError {
            given: crate::model::ids::quote_untrusted(text, 80),
            reason,
        };
        let mut impairment = Self::default();
        if text.trim() == "none" {
            return Ok(impairment);
        }
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let Some((name, value)) = part.split_once('=') else {
                return Err(error(format!("{part:?} is not NAME=VALUE")));
            };
            let bad = || error(format!("{name}={value} is not a value it takes"));
            match name {
                "loss" => {
                    let pct: f64 = value
                        .strip_suffix('%')
                        .unwrap_or(value)
                        .parse()
                        .map_err(|_| bad())?;
                    if !(0.0..=100.0).contains(&pct) {
                        return Err(bad());
                    }
                    impairment.loss_pct = pct;
                }
                "burst" => {
                    let burst: f64 = value.parse().map_err(|_| bad())?;
                    if !(1.0..=1000.0).contains(&burst) {
                        return Err(bad());
                    }
                    impairment.burst = burst;
                }
                "delay" => {
                    impairment.delay = millis(value).filter(|d| *d <= MAX_DELAY).ok_or_else(bad)?;
                }
                "jitter" => {
                    impairment.jitter =
                        millis(value).filter(|d| *d <= MAX_DELAY).ok_or_else(bad)?;
                }
                "rate" => {
                    let rate: u64 = value
                        .strip_suffix("kbit")
                        .unwrap_or(value)
                        .parse()
                        .map_err(|_| bad())?;
                    if rate == 0 {
                        return Err(bad());
                    }
                    impairment.rate_kbit = Some(rate);
                }
                other => {
                    return Err(error(format!(
                        "unknown setting {other:?}: loss, burst, delay, jitter or rate"
                    )));
                }
            }
        }
        if impairment.burst > 1.0 && impairment.loss_pct == 0.0 {
            // Found by fuzzing: accepted, it was written back as `none`.
            return Err(error(
                "burst is how many packets a loss takes in a row: it needs loss= too".to_owned(),
            ));
        }
        Ok(impairment)
    }
}

/// Which way packets go, seen from this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// The packets we send.
    Send,
    /// The packets we receive.
    Receive,
    /// Both.
    #[default]
    Both,
}

/// The impairment of both directions of one link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Directions {
    /// What happens to the packets we send.
    pub send: Impairment,
    /// What happens to the packets we receive.
    pub receive: Impairment,
}

impl Directions {
    /// Sets the directions `direction` names.
    pub fn set(&mut self, direction: Direction, impairment: Impairment) {
        if direction != Direction::Receive {
            self.send = impairment;
        }
        if direction != Direction::Send {
            self.receive = impairment;
        }
    }

    /// Whether neither direction does anything.
    pub fn is_none(&self) -> bool {
        self.send.is_none() && self.receive.is_none()
    }
}

/// What a client does to its media links: one impairment for every peer, and the peers that
/// have their own instead.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkPlan {
    /// For every peer without one of its own.
    pub every_peer: Directions,
    /// Peers with their own.
    pub peers: std::collections::BTreeMap<String, Directions>,
}

impl LinkPlan {
    /// What the link to `user_id` does.
    pub fn for_peer(&self, user_id: &str) -> Directions {
        self.peers.get(user_id).copied().unwrap_or(self.every_peer)
    }

    /// Applies a rule: to one peer (its own from now on), or to every peer without its own.
    pub fn apply(&mut self, rule: &LinkRule) {
        match &rule.peer {
            Some(peer) => {
                let mut directions = self.for_peer(peer);
                directions.set(rule.direction, rule.impairment);
                self.peers.insert(peer.clone(), directions);
            }
            None => self.every_peer.set(rule.direction, rule.impairment),
        }
    }
}

/// One `--impair` setting: an impairment, the direction it is for, and maybe one peer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkRule {
    /// Only the link to this peer (`None`: every peer).
    pub peer: Option<String>,
    /// Which way.
    pub direction: Direction,
    /// What happens.
    pub impairment: Impairment,
}

impl fmt::Display for LinkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.impairment)?;
        match self.direction {
            Direction::Send => f.write_str(",dir=send")?,
            Direction::Receive => f.write_str(",dir=receive")?,
            Direction::Both => {}
        }
        if let Some(peer) = &self.peer {
            write!(f, ",peer={peer}")?;
        }
        Ok(())
    }
}

impl FromStr for LinkRule {
    type Err = ImpairmentError;

    /// An impairment with, optionally, `dir=send|receive|both` (both when left out) and
    /// `peer=USER`: `loss=10%,dir=send,peer=bob`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut rule = Self::default();
        let mut rest = Vec::new();
        for part in text.split(',').map(str::trim) {
            match part.split_once('=') {
                Some(("dir", value)) => {
                    rule.direction = match value {
                        "send" => Direction::Send,
                        "receive" => Direction::Receive,
                        "both" => Direction::Both,
                        _ => {
                            return Err(ImpairmentError {
                                given: crate::model::ids::quote_untrusted(text, 80),
                                reason: format!("dir={value} is not send, receive or both"),
                            });
                        }
                    };
                }
                Some(("peer", value)) if !value.is_empty() => rule.peer = Some(value.to_owned()),
                _ => rest.push(part),
            }
        }
        rule.impairment = rest.join(",").parse()?;
        Ok(rule)
    }
}

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Lost on the way.
    Dropped,
    /// Arrives then.
    Arrives(MonoTime),
}

/// One direction of an impaired link.
#[derive(Debug, Clone)]
pub struct Impairer {
    impairment: Impairment,
    /// xorshift64* state.
    random: u64,
    /// In the Gilbert model's bad state.
    bad: bool,
    /// When the capped link is free again.
    link_free_at: MonoTime,
    /// When the last packet arrives (none arrives sooner).
    last_arrival: MonoTime,
    /// Everything is dropped from the first to the second.
    cut: Option<(MonoTime, MonoTime)>,
}

impl Impairer {
    /// A link doing `impairment`, its randomness from `seed`.
    pub fn new(impairment: Impairment, seed: u64) -> Self {
        Self {
            impairment,
            // A zero state would stay zero.
            random: seed | 1,
            bad: false,
            link_free_at: MonoTime::default(),
            last_arrival: MonoTime::default(),
            cut: None,
        }
    }

    /// Drops every packet from `from` for `duration`.
    pub fn cut(&mut self, from: MonoTime, duration: Duration) {
        self.cut = Some((from, from + duration));
    }

    /// A number in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        let bits = self.random.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1_u64 << 53) as f64
    }

    /// Whether the Gilbert model loses this packet.
    fn lost(&mut self) -> bool {
        let loss = self.impairment.loss_pct / 100.0;
        if loss <= 0.0 {
            return false;
        }
        if loss >= 1.0 {
            return true;
        }
        let burst = self.impairment.burst.max(1.0);
        if burst <= 1.0 {
            return self.uniform() < loss;
        }
        // Leaving the bad state ends a burst; entering it keeps the mean loss at `loss`.
        let to_good = 1.0 / burst;
        let to_bad = (loss * to_good / (1.0 - loss)).min(1.0);
        let switch = if self.bad { to_good } else { to_bad };
        if self.uniform() < switch {
            self.bad = !self.bad;
        }
        self.bad
    }

    /// A packet of `bytes` enters the link at `now`: its fate.
    pub fn packet(&mut self, now: MonoTime, bytes: usize) -> Fate {
        if self
            .cut
            .is_some_and(|(from, until)| from <= now && now < until)
        {
            return Fate::Dropped;
        }
        if self.lost() {
            return Fate::Dropped;
        }
        let mut leaves = now;
        if let Some(rate) = self.impairment.rate_kbit {
            let start = self.link_free_at.max(now);
            // bits / (kbit/s) = ms; in µs: bytes * 8 * 1000 / rate.
            let sending = Duration::from_micros((bytes as u64 * 8_000).div_ceil(rate));
            // The queue holds what fits in it, so a small packet may still fit where a large
            // one would not.
            if (start + sending).since(now) > MAX_QUEUE {
                return Fate::Dropped;
            }
            self.link_free_at = start + sending;
            leaves = self.link_free_at;
        }
        let jitter = self.impairment.jitter.as_micros() as f64;
        let swing = (self.uniform() * 2.0 - 1.0) * jitter;
        let delay = (self.impairment.delay.as_micros() as f64 + swing).max(0.0);
        let arrives = leaves + Duration::from_secs_f64(delay / 1e6);
        let arrives = arrives.max(self.last_arrival);
        self.last_arrival = arrives;
        Fate::Arrives(arrives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        impairer: &mut Impairer,
        packets: usize,
        spacing_micros: u64,
        bytes: usize,
    ) -> Vec<Fate> {
        (0..packets)
            .map(|index| {
                impairer.packet(MonoTime::from_micros(index as u64 * spacing_micros), bytes)
            })
            .collect()
    }

    #[test]
    fn settings_read_back_as_written_and_bad_ones_say_why() {
        let impairment: Impairment = "loss=5%,burst=3,delay=80ms,jitter=20ms,rate=500kbit"
            .parse()
            .expect("a good setting");
        assert_eq!(
            impairment.to_string(),
            "loss=5%,burst=3,delay=80ms,jitter=20ms,rate=500kbit"
        );
        assert_eq!(impairment.to_string().parse::<Impairment>(), Ok(impairment));
        assert!("none".parse::<Impairment>().expect("none").is_none());
        for bad in [
            "loss=120%",
            "delay=soon",
            "delay=20000ms",
            "rate=0kbit",
            "colour=red",
            "loss",
            // A burst without loss (the fuzzer's find: it was written back as `none`).
            "burst=3,,,,",
            "loss=0%,burst=2",
        ] {
            let error = bad.parse::<Impairment>().expect_err(bad).to_string();
            assert!(error.contains("like loss=5%"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_rule_names_its_direction_and_peer_and_a_plan_keeps_each_peer_s_own() {
        let rule: LinkRule = "loss=10%,dir=send,peer=bob".parse().expect("a rule");
        assert_eq!(rule.direction, Direction::Send);
        assert_eq!(rule.peer.as_deref(), Some("bob"));
        assert_eq!(rule.to_string(), "loss=10%,dir=send,peer=bob");
        let both: LinkRule = "delay=80ms".parse().expect("a rule");
        assert_eq!(
            (both.direction, both.peer.as_deref()),
            (Direction::Both, None)
        );
        assert!("loss=1%,dir=up".parse::<LinkRule>().is_err());

        let mut plan = LinkPlan::default();
        plan.apply(&both);
        plan.apply(&rule);
        let delay = Duration::from_millis(80);
        assert_eq!(plan.for_peer("carol").send.delay, delay);
        assert_eq!(plan.for_peer("carol").receive.delay, delay);
        // Bob's own starts from what every peer had, and only his sending changed.
        let bob = plan.for_peer("bob");
        assert!(bob.send.loss_pct > 9.9 && bob.send.delay.is_zero());
        assert_eq!(bob.receive.delay, delay);
        plan.apply(&"none".parse().expect("a rule"));
        assert!(plan.for_peer("carol").is_none());
        assert!(!plan.for_peer("bob").is_none(), "bob keeps his own");
    }

    #[test]
    fn random_and_bursty_loss_lose_what_was_asked() {
        for burst in [1.0, 4.0] {
            let impairment = Impairment {
                loss_pct: 10.0,
                burst,
                ..Impairment::default()
            };
            let fates = run(&mut Impairer::new(impairment, 7), 200_000, 1000, 1200);
            let lost = fates.iter().filter(|fate| **fate == Fate::Dropped).count();
            let pct = lost as f64 * 100.0 / fates.len() as f64;
            assert!(
                (9.5..=10.5).contains(&pct),
                "burst {burst}: {pct:.2} % lost"
            );
            // Runs of losses average the burst length.
            let mut runs = Vec::new();
            let mut run_length = 0;
            for fate in &fates {
                if *fate == Fate::Dropped {
                    run_length += 1;
                } else if run_length > 0 {
                    runs.push(run_length);
                    run_length = 0;
                }
            }
            let mean = runs.iter().sum::<usize>() as f64 / runs.len() as f64;
            let expected = if burst > 1.0 { burst } else { 1.0 / 0.9 };
            assert!(
                (mean - expected).abs() < 0.3,
                "burst {burst}: runs of {mean:.2}"
            );
        }
    }

    #[test]
    fn delay_and_jitter_stay_within_bounds_and_never_reorder() {
        let impairment = Impairment {
            delay: Duration::from_millis(80),
            jitter: Duration::from_millis(20),
            burst: 1.0,
            ..Impairment::default()
        };
        let fates = run(&mut Impairer::new(impairment, 3), 10_000, 20_000, 1200);
        let mut previous = MonoTime::default();
        for (index, fate) in fates.iter().enumerate() {
            let Fate::Arrives(at) = *fate else {
                unreachable!("nothing is lost")
            };
            let delay = at.as_micros() - index as u64 * 20_000;
            assert!(
                (60_000..=100_000).contains(&delay),
                "packet {index}: {delay} µs"
            );
            assert!(at >= previous);
            previous = at;
        }
    }

    #[test]
    fn a_cap_passes_its_rate_and_drops_beyond_its_queue_and_a_cut_drops_everything() {
        let impairment = Impairment {
            rate_kbit: Some(500),
            burst: 1.0,
            ..Impairment::default()
        };
        // 1,000 kbit/s offered (1,250 bytes every 10 ms) for 10 s into a 500 kbit/s link.
        let mut impairer = Impairer::new(impairment, 1);
        let fates = run(&mut impairer, 1000, 10_000, 1250);
        let through = fates
            .iter()
            .filter(|fate| matches!(fate, Fate::Arrives(_)))
            .count();
        let kbit = through as f64 * 1250.0 * 8.0 / 1000.0 / 10.0;
        assert!((480.0..=520.0).contains(&kbit), "{kbit:.0} kbit/s through");
        let mut cut = Impairer::new(Impairment::default(), 1);
        cut.cut(MonoTime::from_millis(100), Duration::from_secs(1));
        let fates = run(&mut cut, 200, 10_000, 100);
        let dropped: Vec<usize> = fates
            .iter()
            .enumerate()
            .filter(|(_, fate)| **fate == Fate::Dropped)
            .map(|(index, _)| index)
            .collect();
        assert_eq!(dropped, (10..110).collect::<Vec<_>>());
    }
}
