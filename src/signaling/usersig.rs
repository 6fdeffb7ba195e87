//! UserSig: an HMAC-SHA256 token over user id, app id, issue time, lifetime and key id.
//!
//! Format: `v1.<base64url(payload JSON)>.<base64url(HMAC-SHA256(secret, payload part))>`.
//! A server checks it with its [`Keyring`] (several keys by id, so a secret can rotate: tokens
//! of the old key stay good while the new one signs), against [`SigPolicy`] (a longest lifetime,
//! a bound on clock skew) and its [`Revocations`] (a user's tokens issued before a time).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::ids::check_user_id;
use crate::model::{CallError, ErrorCode};

/// The app id callscope signs for unless told otherwise.
pub const DEFAULT_APP_ID: u64 = 1_400_000_001;

/// How long a UserSig lasts by default: 7 days, as TUICallKit's test signatures.
pub const DEFAULT_EXPIRE_SECS: u64 = 604_800;

/// The longest lifetime a server accepts by default: 180 days.
pub const MAX_LIFETIME_SECS: u64 = 180 * 24 * 3600;

/// How far in the future a token's issue time may be (the signer's clock runs ahead).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// The id of the key a token without one was signed with.
pub const DEFAULT_KEY_ID: &str = "default";

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

/// The signed payload: the claims and the key that signed them.
#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(flatten)]
    claims: UserSigClaims,
    #[serde(default = "default_key_id", skip_serializing_if = "is_default_key")]
    kid: String,
}

fn default_key_id() -> String {
    DEFAULT_KEY_ID.to_owned()
}

fn is_default_key(kid: &str) -> bool {
    kid == DEFAULT_KEY_ID
}

/// Why a UserSig was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserSigError {
    /// Not signed with a key of the keyring, malformed, for another user or app, or outside
    /// the policy.
    #[error("UserSig verification failed: {0}")]
    Invalid(String),
    /// Signed correctly, but expired.
    #[error("UserSig expired at {expired_at}")]
    Expired {
        /// When it expired, seconds since the Unix epoch.
        expired_at: u64,
    },
    /// Signed correctly, but revoked (the user's tokens issued before a time were).
    #[error(
        "UserSig revoked: tokens of this user issued before {revoked_before} are no longer accepted"
    )]
    Revoked {
        /// Tokens issued before this time (seconds since the Unix epoch) are refused.
        revoked_before: u64,
    },
}

impl UserSigError {
    /// The contract error (`70009`).
    pub fn to_call_error(&self) -> CallError {
        let message = match self {
            Self::Invalid(why) => why.clone(),
            Self::Expired { .. } | Self::Revoked { .. } => self.to_string(),
        };
        CallError::new(ErrorCode::UserSigInvalid, message)
    }
}

/// The keys a server accepts, by id; the first one signs.
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        let ids: Vec<&str> = self.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        formatter
            .debug_struct("Keyring")
            .field("ids", &ids)
            .finish()
    }
}

impl Keyring {
    /// One key, with the default id.
    pub fn single(secret: &[u8]) -> Self {
        Self {
            keys: vec![(DEFAULT_KEY_ID.to_owned(), secret.to_vec())],
        }
    }

    /// Reads a secret file. One line: the secret of the default key (all of it, spaces too).
    /// Several lines: one key each, `ID SECRET` (a line without a space is a secret of the
    /// default id); the first line is the key that signs. Surrounding whitespace is ignored.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(text);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        if let [only] = lines[..] {
            return Ok(Self::single(only.as_bytes()));
        }
        let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
        for line in lines {
            let (kid, secret) = match line.split_once(char::is_whitespace) {
                Some((kid, secret)) => (kid.to_owned(), secret.trim()),
                None => (DEFAULT_KEY_ID.to_owned(), line),
            };
            if keys.iter().any(|(known, _)| *known == kid) {
                return Err(format!("key id {kid:?} is listed twice"));
            }
            keys.push((kid, secret.as_bytes().to_vec()));
        }
        if keys.is_empty() {
            return Err("no key in the secret file".to_owned());
        }
        Ok(Self { keys })
    }

    /// The id of the key that signs.
    pub fn signing_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Signs `claims` with the signing key.
    pub fn sign(&self, claims: &UserSigClaims) -> String {
        let (kid, secret) = &self.keys[0];
        sign_with(kid, secret, claims)
    }

    fn secret(&self, kid: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(known, _)| known == kid)
            .map(|(_, secret)| secret.as_slice())
    }
}

/// What a server accepts beyond a good signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigPolicy {
    /// The longest lifetime.
    pub max_lifetime_secs: u64,
    /// How far ahead of the server's clock an issue time may be.
    pub max_clock_skew_secs: u64,
}

impl Default for SigPolicy {
    fn default() -> Self {
        Self {
            max_lifetime_secs: MAX_LIFETIME_SECS,
            max_clock_skew_secs: MAX_CLOCK_SKEW_SECS,
        }
    }
}

/// Users whose tokens issued before a time are refused (their sessions are closed too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    before: BTreeMap<String, u64>,
}

impl Revocations {
    /// Reads a revocation list: one `USER UNIX_SECS` per line; a later line for a user wins.
    pub fn parse(text: &str) -> Self {
        let mut before = BTreeMap::new();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            if let (Some(user), Some(secs), None) = (fields.next(), fields.next(), fields.next())
                && let Ok(secs) = secs.parse::<u64>()
            {
                before.insert(user.to_owned(), secs);
            }
        }
        Self { before }
    }

    /// Refuses `user_id`'s tokens issued before `before_secs`.
    pub fn revoke(&mut self, user_id: &str, before_secs: u64) {
        self.before.insert(user_id.to_owned(), before_secs);
    }

    /// The time before which `user_id`'s tokens are refused, if any.
    pub fn revoked_before(&self, user_id: &str) -> Option<u64> {
        self.before.get(user_id).copied()
    }

    /// The line that revokes `user_id`'s tokens issued before `before_secs`.
    pub fn line(user_id: &str, before_secs: u64) -> String {
        format!("{user_id} {before_secs}\n")
    }
}

fn mac(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(payload.as_bytes());
    mac
}

/// Signs `claims` with `secret` (the key with the default id).
pub fn sign(secret: &[u8], claims: &UserSigClaims) -> String {
    sign_with(DEFAULT_KEY_ID, secret, claims)
}

/// Signs `claims` with `secret`, naming its key `kid`.
pub fn sign_with(kid: &str, secret: &[u8], claims: &UserSigClaims) -> String {
    let payload = Payload {
        claims: claims.clone(),
        kid: kid.to_owned(),
    };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &payload).finalize().into_bytes());
    format!("v1.{payload}.{signature}")
}

/// Checks `token` for `user_id` and `app_id` at `now_secs`, signed with `secret` (the key with
/// the default id), under the default policy.
pub fn verify(
    secret: &[u8],
    token: &str,
    user_id: &str,
    app_id: u64,
    now_secs: u64,
) -> Result<UserSigClaims, UserSigError> {
    let check = Check {
        keys: &Keyring::single(secret),
        policy: SigPolicy::default(),
        revocations: &Revocations::default(),
        app_id,
        now_secs,
    };
    check.verify(token, user_id)
}

/// Everything a token is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The keys that may have signed it.
    pub keys: &'a Keyring,
    /// Lifetime and skew bounds.
    pub policy: SigPolicy,
    /// Revoked users.
    pub revocations: &'a Revocations,
    /// The app it must name.
    pub app_id: u64,
    /// The server's time, seconds since the Unix epoch.
    pub now_secs: u64,
}

impl Check<'_> {
    /// Checks `token` for `user_id`.
    pub fn verify(&self, token: &str, user_id: &str) -> Result<UserSigClaims, UserSigError> {
        let invalid = |why: &str| UserSigError::Invalid(why.to_owned());
        let mut parts = token.split('.');
        let (Some("v1"), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a v1 UserSig"));
        };
        let decoded: Payload = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| invalid("payload is not readable"))?;
        let secret = self
            .keys
            .secret(&decoded.kid)
            .ok_or_else(|| invalid("signed with a key this server does not hold"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| invalid("signature is not base64"))?;
        mac(secret, payload)
            .verify_slice(&signature)
            .map_err(|_| invalid("signature does not match"))?;
        let claims = decoded.claims;
        if claims.user_id != user_id {
            return Err(invalid("signed for another user"));
        }
        if claims.app_id != self.app_id {
            return Err(invalid("signed for another app"));
        }
        if claims.expire_secs > self.policy.max_lifetime_secs {
            return Err(invalid(&format!(
                "a lifetime of {} s is longer than the {} s this server accepts",
                claims.expire_secs, self.policy.max_lifetime_secs
            )));
        }
        if claims.issued_at
            > self
                .now_secs
                .saturating_add(self.policy.max_clock_skew_secs)
        {
            return Err(invalid("issued in the future"));
        }
        if claims.expires_at() <= self.now_secs {
            return Err(UserSigError::Expired {
                expired_at: claims.expires_at(),
            });
        }
        if let Some(revoked_before) = self.revocations.revoked_before(user_id)
            && claims.issued_at < revoked_before
        {
            return Err(UserSigError::Revoked { revoked_before });
        }
        Ok(claims)
    }
}

/// Checks what a UserSig is about to assert before it is signed.
pub fn check_claims(claims: &UserSigClaims, policy: SigPolicy) -> Result<(), String> {
    check_user_id(&claims.user_id)?;
    if claims.expire_secs == 0 || claims.expire_secs > policy.max_lifetime_secs {
        return Err(format!(
            "a lifetime of {} s is outside 1..={} s",
            claims.expire_secs, policy.max_lifetime_secs
        ));
    }
    Ok(())
}

/// Seconds since the Unix epoch now.
pub fn unix_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Milliseconds since the Unix epoch now.
pub fn unix_now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// A fresh random secret, for an embedded server.
pub fn random_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut secret = vec![0_u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::{
        Check, Keyring, Revocations, SigPolicy, UserSigClaims, UserSigError, sign, sign_with,
    };

    const APP: u64 = 7;
    const NOW: u64 = 1_800_000_000;

    fn claims(user: &str, issued_at: u64, expire_secs: u64) -> UserSigClaims {
        UserSigClaims {
            user_id: user.into(),
            app_id: APP,
            issued_at,
            expire_secs,
        }
    }

    fn check<'a>(keys: &'a Keyring, revocations: &'a Revocations) -> Check<'a> {
        Check {
            keys,
            policy: SigPolicy::default(),
            revocations,
            app_id: APP,
            now_secs: NOW,
        }
    }

    #[test]
    fn a_rotated_secret_keeps_old_tokens_good_and_signs_new_ones_with_the_new_key() {
        let keys = Keyring::parse(b"k2 new-secret\nold-secret\n").expect("two keys");
        assert_eq!(keys.signing_id(), "k2");
        let none = Revocations::default();
        let old = sign(b"old-secret", &claims("bob", NOW, 60));
        assert!(check(&keys, &none).verify(&old, "bob").is_ok());
        let new = keys.sign(&claims("bob", NOW, 60));
        assert!(check(&keys, &none).verify(&new, "bob").is_ok());
        let unknown = sign_with("k9", b"new-secret", &claims("bob", NOW, 60));
        assert!(matches!(
            check(&keys, &none).verify(&unknown, "bob"),
            Err(UserSigError::Invalid(_))
        ));
        assert!(Keyring::parse(b"a x\na y\n").is_err());
        assert!(Keyring::parse(b"\n  \n").is_err());
    }

    #[test]
    fn the_policy_bounds_lifetime_and_issue_time() {
        let keys = Keyring::single(b"s");
        let none = Revocations::default();
        let forever = sign(b"s", &claims("bob", NOW, u64::MAX));
        assert!(check(&keys, &none).verify(&forever, "bob").is_err());
        let ahead = sign(b"s", &claims("bob", NOW + 10 * 365 * 24 * 3600, 60));
        assert!(check(&keys, &none).verify(&ahead, "bob").is_err());
        let slightly_ahead = sign(b"s", &claims("bob", NOW + 100, 3600));
        assert!(check(&keys, &none).verify(&slightly_ahead, "bob").is_ok());
    }

    #[test]
    fn a_revocation_refuses_tokens_issued_before_it_only() {
        let keys = Keyring::single(b"s");
        let mut revoked = Revocations::parse("bob 1799999000\nnot a line\n");
        assert_eq!(revoked.revoked_before("bob"), Some(1_799_999_000));
        let before = sign(b"s", &claims("bob", 1_799_998_000, 7200));
        assert!(matches!(
            check(&keys, &revoked).verify(&before, "bob"),
            Err(UserSigError::Revoked { .. })
        ));
        let after = sign(b"s", &claims("bob", 1_799_999_500, 7200));
        assert!(check(&keys, &revoked).verify(&after, "bob").is_ok());
        revoked.revoke("bob", NOW);
        assert!(check(&keys, &revoked).verify(&after, "bob").is_err());
    }
}
