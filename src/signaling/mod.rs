//! Signaling: the protocol, UserSig tokens, the sans-IO switchboard and the WebSocket server.

mod protocol;
mod server;
pub mod switchboard;
pub mod usersig;

pub use protocol::{
    ClientMessage, Contact, DecodeError, MAX_FRAME_BYTES, MAX_SHARED_ENTRIES,
    MAX_SHARED_ENTRY_BYTES, PROTOCOL_VERSION, ServerMessage, decode_client, decode_server, encode,
};
pub use server::{Server, ServerConfig, ServerStats, TransportLimits};
