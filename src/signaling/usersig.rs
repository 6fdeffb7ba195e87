//! UserSig: an HMAC-SHA256 token over user id, app id, issue time and expiry.
//!
//! Format: `v1.<base64url(payload JSON)>.<base64url(HMAC-SHA256(secret, payload part))>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::{CallError, ErrorCode};

/// The app id callscope signs for unless told otherwise.
pub const DEFAULT_APP_ID: u64 = 1_400_000_001;

/// How long a UserSig lasts by default: 7 days, as TUICallKit's test signatures.
pub const DEFAULT_EXPIRE_SECS: u64 = 604_800;

/// What a UserSig asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSigClaims {
    /// The user.
    pub user_id: String,
    /// The app.
    pub app_id: u64,
    /// When it was issued, seconds since the Unix epoch.
    pub issued_at: u64,
    /// How long it lasts, in seconds.
    pub expire_secs: u64,
}

impl UserSigClaims {
    /// When it stops being valid, seconds since the Unix epoch.
    pub fn expires_at(&self) -> u64 {
        self.issued_at.saturating_add(self.expire_secs)
    }
}

/// Why a UserSig was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserSigError {
    /// Not signed with this secret, malformed, or for another user or app.
    #[error("UserSig verification failed: {0}")]
    Invalid(String),
    /// Signed correctly, but expired.
    #[error("UserSig expired at {expired_at}")]
    Expired {
        /// When it expired, seconds since the Unix epoch.
        expired_at: u64,
    },
}

impl UserSigError {
    /// The contract error (`70009` for an invalid one).
    pub fn to_call_error(&self) -> CallError {
        let message = match self {
            Self::Invalid(why) => why.clone(),
            Self::Expired { .. } => self.to_string(),
        };
        CallError::new(ErrorCode::UserSigInvalid, message)
    }
}

fn mac(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(payload.as_bytes());
    mac
}

/// Signs `claims` with `secret`.
pub fn sign(secret: &[u8], claims: &UserSigClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &payload).finalize().into_bytes());
    format!("v1.{payload}.{signature}")
}

/// Checks `token` for `user_id` and `app_id` at `now_secs`.
pub fn verify(
    secret: &[u8],
    token: &str,
    user_id: &str,
    app_id: u64,
    now_secs: u64,
) -> Result<UserSigClaims, UserSigError> {
    let invalid = |why: &str| UserSigError::Invalid(why.to_owned());
    let mut parts = token.split('.');
    let (Some("v1"), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a v1 UserSig"));
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| invalid("signature is not base64"))?;
    mac(secret, payload)
        .verify_slice(&signature)
        .map_err(|_| invalid("signature does not match"))?;
    let claims: UserSigClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| invalid("payload is not readable"))?;
    if claims.user_id != user_id {
        return Err(invalid("signed for another user"));
    }
    if claims.app_id != app_id {
        return Err(invalid("signed for another app"));
    }
    if claims.expires_at() <= now_secs {
        return Err(UserSigError::Expired {
            expired_at: claims.expires_at(),
        });
    }
    Ok(claims)
}

/// Seconds since the Unix epoch now.
pub fn unix_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A fresh random secret, for an embedded server.
pub fn random_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut secret = vec![0_u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}
