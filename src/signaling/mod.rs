//! Signaling: the protocol, UserSig tokens, the sans-IO switchboard, the WebSocket server, and
//! the call webhooks for an app's backend.

pub mod admission;
mod bus;
mod gate;
mod protocol;
mod server;
pub mod switchboard;
pub mod usersig;
pub mod webhook;
mod webhook_post;

pub use bus::{BusConfig, NODE_LOST_AFTER, PRESENCE_CHANNEL, node_channel};
pub use protocol::{
    ClientMessage, Contact, DecodeError, MAX_FRAME_BYTES, MAX_SHARED_ENTRIES,
    MAX_SHARED_ENTRY_BYTES, PROTOCOL_VERSION, ServerMessage, decode_client, decode_server, encode,
};
pub use server::{Server, ServerConfig, ServerStats, TransportLimits, client_websocket_config};
pub use webhook_post::{Answer, WebhookConfig, parse_url, read_answer};
