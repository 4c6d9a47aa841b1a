//! Accounts and sessions: argon2id password hashes (computed off the async threads), random session
//! tokens kept by the browser in an HttpOnly, SameSite=Strict cookie and stored only as SHA-256,
//! a role-checked extractor, and a per-address login rate limit.
//!
//! Never log a password, a token or a hash.

pub mod http;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use base64::Engine as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngExt as _;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::domain::{OperatorId, Role, Timestamp};
use crate::error::ApiError;
use crate::store::{Account, Session, StoreError};

pub const SESSION_COOKIE: &str = "hotline_session";

/// A random URL-safe token of `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 hex of a secret token, for storage and lookup.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hashes a password with argon2id on the blocking pool.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        // The salt is drawn from the operating system's generator.
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hash: {e}"))
    })
    .await?
}

/// Checks a password against a stored argon2 hash on the blocking pool.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// Rules for new passwords: long enough to resist guessing, not absurdly long (argon2 cost).
pub fn check_new_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < 10 {
        return Err(ApiError::Invalid(
            "password: must be at least 10 characters".into(),
        ));
    }
    if password.len() > 256 {
        return Err(ApiError::Invalid(
            "password: must be at most 256 bytes".into(),
        ));
    }
    Ok(())
}

/// Per-address rate limiter (logins, caller joins), keyed by [`crate::extract::ClientAddress`].
#[derive(Clone)]
pub struct AddressLimiter(Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl AddressLimiter {
    pub fn per_minute(n: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self::with(quota)
    }

    fn with(quota: Quota) -> Self {
        AddressLimiter(Arc::new(RateLimiter::keyed(quota)))
    }

    /// Forgets addresses whose limit has fully recovered, so that memory stays bounded.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }

    pub fn check(&self, address: IpAddr) -> Result<(), ApiError> {
        self.0
            .check_key(&address)
            .map_err(|_| ApiError::RateLimited)?;
        Ok(())
    }
}

/// Sign-in attempts: per (address, account name), so that other people's attempts from the same
/// address (an office behind one NAT, a proxy) do not lock an account out; and per address, ten
/// times as many, which bounds trying many names from one place.
#[derive(Clone)]
pub struct LoginLimiter {
    by_name: Arc<DefaultKeyedRateLimiter<(IpAddr, String)>>,
    by_address: AddressLimiter,
}

impl LoginLimiter {
    pub fn per_minute(n: u32) -> Self {
        let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        LoginLimiter {
            by_name: Arc::new(RateLimiter::keyed(Quota::per_minute(n))),
            by_address: AddressLimiter::per_minute(n.get().saturating_mul(10)),
        }
    }

    pub fn check(&self, address: IpAddr, name: &str) -> Result<(), ApiError> {
        let name = name.trim().to_lowercase();
        self.by_name
            .check_key(&(address, name))
            .map_err(|_| ApiError::RateLimited)?;
        self.by_address.check(address)
    }

    /// Forgets keys whose limit has fully recovered, so that memory stays bounded.
    pub fn forget_idle(&self) {
        self.by_name.retain_recent();
        self.by_name.shrink_to_fit();
        self.by_address.forget_idle();
    }
}

/// Starts a session for an account and returns the cookie token.
pub async fn start_session(state: &AppState, account: OperatorId) -> Result<String, ApiError> {
    let token = random_token(32);
    let now = Timestamp::now();
    state
        .store
        .create_session(Session {
            token_hash: token_hash(&token),
            account,
            created_at: now,
            expires_at: now.plus_ms(state.settings.auth.session_ttl_hours * 3_600_000),
        })
        .await?;
    Ok(token)
}

/// The signed-in account, from the session cookie. Disabled accounts are refused.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub account: Account,
    pub token_hash: String,
}

impl CurrentUser {
    pub fn id(&self) -> OperatorId {
        self.account.id
    }
    pub fn role(&self) -> Role {
        self.account.role
    }
    /// Forbidden unless the account has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.account.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// All an account whose password must change may do: see who it is, change it, sign out.
const BEFORE_PASSWORD_CHANGE: [&str; 3] = ["/api/me", "/api/me/password", "/api/logout"];

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .ok_or(ApiError::Unauthorized)?;
        let hash = token_hash(&token);
        let session = match state.store.session(&hash, Timestamp::now()).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Err(ApiError::Unauthorized),
            Err(e) => return Err(e.into()),
        };
        let account = match state.store.account(session.account).await {
            Ok(a) if !a.disabled => a,
            Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::Unauthorized),
            Err(e) => return Err(e.into()),
        };
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(parts.uri.path(), |u| u.0.path());
        if account.must_change_password && !BEFORE_PASSWORD_CHANGE.contains(&path) {
            return Err(ApiError::PasswordChangeRequired);
        }
        Ok(CurrentUser {
            account,
            token_hash: hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = hash_password("correct horse battery".into()).await.unwrap();
        let b = hash_password("correct horse battery".into()).await.unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), a.clone()).await);
        assert!(!verify_password("wrong".into(), a).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn limiters_forget_addresses_that_have_recovered() {
        // Ten a second: an address that made one attempt has recovered after about 1.1 s.
        let limiter = AddressLimiter::with(Quota::per_second(NonZeroU32::new(10).unwrap()));
        for i in 0..50u8 {
            limiter.check(IpAddr::from([10, 0, 0, i])).unwrap();
        }
        limiter.forget_idle();
        assert_eq!(limiter.0.len(), 50, "still recovering");
        std::thread::sleep(std::time::Duration::from_millis(1_500));
        limiter.forget_idle();
        assert!(limiter.0.is_empty());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let t = random_token(32);
        assert_ne!(t, random_token(32));
        assert_eq!(token_hash(&t).len(), 64);
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough pass").is_ok());
    }
}
