//! What the integration tests share: a deployment in virtual time ([`world::World`]), real
//! sockets on 127.0.0.1 ([`net::Net`]), a real Redis and a real coturn in networks of their own.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

pub mod net;
pub mod redis;
pub mod turn;
pub mod world;
