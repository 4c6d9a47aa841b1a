//! Sign-in, sign-out, who am I, and password change.

use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    CurrentUser, SESSION_COOKIE, check_new_password, hash_password, start_session, verify_password,
};
use crate::app::AppState;
use crate::domain::{Language, OperatorId, Role};
use crate::error::ApiError;
use crate::extract::{ClientAddress, Json};
use crate::store::{Account, StoreError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub name: String,
    pub password: String,
}

/// The signed-in account, as the console sees it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    pub id: OperatorId,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub languages: Vec<Language>,
    pub must_change_password: bool,
}

impl From<&Account> for Me {
    fn from(a: &Account) -> Self {
        Me {
            id: a.id,
            name: a.name.clone(),
            display_name: a.display_name.clone(),
            role: a.role,
            languages: a.languages.clone(),
            must_change_password: a.must_change_password,
        }
    }
}

fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .build()
}

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    Json(req): Json<LoginRequest>,
) -> Result<(CookieJar, Json<Me>), ApiError> {
    state.login_limiter.check(address, &req.name)?;
    let refused = || ApiError::Invalid("wrong name or password".into());
    let account = match state.store.account_by_name(req.name.trim()).await {
        Ok(a) => a,
        Err(StoreError::NotFound) => {
            // Spend the same time as a real check so names cannot be probed by timing.
            let _ = verify_password(req.password, state.dummy_hash.to_string()).await;
            return Err(refused());
        }
        Err(e) => return Err(e.into()),
    };
    if !verify_password(req.password, account.password_hash.clone()).await || account.disabled {
        return Err(refused());
    }
    let token = start_session(&state, account.id).await?;
    tracing::info!(account = %account.id, "signed in");
    let jar = jar.add(session_cookie(token, state.settings.server.secure_cookies));
    Ok((jar, Json(Me::from(&account))))
}

pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode), ApiError> {
    state.store.delete_session(&user.token_hash).await?;
    state.hub.sign_out_staff(user.id());
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/").build());
    Ok((jar, StatusCode::NO_CONTENT))
}

pub async fn me(user: CurrentUser) -> Json<Me> {
    Json(Me::from(&user.account))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the signed-in account's password and signs out its other sessions.
#[tracing::instrument(skip_all)]
pub async fn change_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: CurrentUser,
    jar: CookieJar,
    Json(req): Json<PasswordChange>,
) -> Result<(CookieJar, StatusCode), ApiError> {
    state.login_limiter.check(address, &user.account.name)?;
    if !verify_password(req.current_password, user.account.password_hash.clone()).await {
        return Err(ApiError::Invalid("current_password: wrong password".into()));
    }
    check_new_password(&req.new_password)?;
    let hash = hash_password(req.new_password).await?;
    state.store.set_password(user.id(), &hash, false).await?;
    state.store.delete_sessions_of(user.id()).await?;
    // Whoever else had a session had a console too; this browser's connects again.
    state.hub.sign_out_staff(user.id());
    let token = start_session(&state, user.id()).await?;
    let jar = jar.add(session_cookie(token, state.settings.server.secure_cookies));
    Ok((jar, StatusCode::NO_CONTENT))
}
