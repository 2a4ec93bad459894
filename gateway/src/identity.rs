//! identity: who is calling, decided at the edge. A token comes as `Authorization: Bearer` or,
//! for a browser (whose `EventSource` cannot send headers), in the HttpOnly session cookie; it
//! is verified here (the services verify it again) and handed on as `Authorization`. Also the
//! session routes: sign in with a token, sign out, who am I, and the development login.

use crate::state::Gateway;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nats::web::auth::{ADMIN_ROLE, claims};
use nats::web::{Body, Problem, ProblemType, kinds};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The session cookie's name.
pub const COOKIE: &str = "ticketing_session";
/// How long a development login lasts.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// `POST /api/dev/login` when `DEV_LOGIN` is off: tokens come from the identity provider.
pub const DEV_LOGIN_OFF: ProblemType = ProblemType::new(
    "dev-login-off",
    StatusCode::NOT_FOUND,
    "Development login is off",
);
/// A development login for a user id that cannot be one.
pub const INVALID_LOGIN: ProblemType = ProblemType::new(
    "invalid-login",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Invalid login",
);

/// The verified caller, put on the request by [`resolve`].
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub admin: bool,
    /// When the token expires (Unix seconds).
    pub exp: u64,
}

/// The token in the session cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
}

/// Middleware: turns the session cookie into `Authorization` when there is no header, verifies
/// whatever token there is (401 if it is not valid) and records the [`Caller`]. Anonymous
/// requests pass; the routes that need a user say so with [`required`].
pub async fn resolve(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let headers = req.headers_mut();
    if !headers.contains_key(header::AUTHORIZATION)
        && let Some(token) = cookie_token(headers)
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        headers.insert(header::AUTHORIZATION, value);
    }
    if headers.contains_key(header::AUTHORIZATION) {
        match claims(headers, &gw.auth) {
            Ok(c) => {
                let caller = Caller {
                    admin: c.role.as_deref() == Some(ADMIN_ROLE),
                    user: c.sub,
                    exp: c.exp,
                };
                req.extensions_mut().insert(caller);
            }
            Err(problem) => return problem.into_response(),
        }
    }
    next.run(req).await
}

/// Route middleware: a signed-in caller is required.
pub async fn required(req: Request, next: Next) -> Response {
    if req.extensions().get::<Caller>().is_none() {
        return Problem::new(
            kinds::UNAUTHORIZED,
            "sign in first: send Authorization: Bearer <token>, or the session cookie",
        )
        .into_response();
    }
    next.run(req).await
}

/// The session cookie holding `token` until `exp`, or clearing it.
fn session_cookie(gw: &Gateway, token: Option<(&str, u64)>) -> HeaderValue {
    let secure = if gw.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let (value, max_age) = match token {
        Some((token, exp)) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
            (token, exp.saturating_sub(now))
        }
        None => ("", 0),
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("a token is visible ASCII")
}

fn who(caller: &Caller) -> serde_json::Value {
    json!({
        "user_id": caller.user,
        "role": caller.admin.then_some(ADMIN_ROLE),
        "expires_at": exp_rfc3339(caller.exp),
    })
}

fn exp_rfc3339(exp: u64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(exp).ok()?)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// `GET /api/session`: who the token or cookie says the caller is.
pub async fn whoami(
    caller: Option<axum::Extension<Caller>>,
) -> Result<Json<serde_json::Value>, Problem> {
    let caller = caller.ok_or_else(|| Problem::new(kinds::UNAUTHORIZED, "not signed in"))?;
    Ok(Json(who(&caller)))
}

/// `POST /api/session`: keeps the bearer token (from the identity provider) in the session
/// cookie, so the browser's live streams are signed in too.
pub async fn sign_in(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    let cookie = session_cookie(&gw, Some((token, caller.exp)));
    ([(header::SET_COOKIE, cookie)], Json(who(&caller))).into_response()
}

/// `DELETE /api/session`: forgets the session cookie.
pub async fn sign_out(State(gw): State<Arc<Gateway>>) -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie(&gw, None))],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct DevLogin {
    user_id: String,
    #[serde(default)]
    role: Option<String>,
}

/// `POST /api/dev/login {user_id, role?}` (`DEV_LOGIN=true` only): a token for anyone, in the
/// session cookie and in the answer.
pub async fn dev_login(
    State(gw): State<Arc<Gateway>>,
    Body(login): Body<DevLogin>,
) -> Result<Response, Problem> {
    if !gw.config.dev_login {
        return Err(Problem::new(
            DEV_LOGIN_OFF,
            "development login is off (DEV_LOGIN); sign in with your identity provider's token",
        ));
    }
    let user = login.user_id.trim();
    if user.is_empty() || user.len() > 64 || user.chars().any(char::is_control) {
        return Err(Problem::new(
            INVALID_LOGIN,
            "user_id must be 1 to 64 characters, without control characters",
        ));
    }
    let role = match login.role.as_deref() {
        None | Some("") | Some("user") => None,
        Some(ADMIN_ROLE) => Some(ADMIN_ROLE),
        Some(other) => {
            return Err(Problem::new(
                INVALID_LOGIN,
                format!("role {other:?} is not one: \"admin\", or none"),
            ));
        }
    };
    let token = gw
        .auth
        .try_issue(user, role, DEV_TOKEN_TTL)
        .ok_or_else(|| {
            Problem::new(
                DEV_LOGIN_OFF,
                "the gateway holds a public key only (JWT_PUBLIC_KEY or JWT_JWKS): it cannot sign",
            )
        })?;
    let caller = Caller {
        user: user.to_owned(),
        admin: role.is_some(),
        exp: time::OffsetDateTime::now_utc().unix_timestamp() as u64 + DEV_TOKEN_TTL.as_secs(),
    };
    let mut body = who(&caller);
    body["token"] = json!(token);
    let cookie = session_cookie(&gw, Some((&token, caller.exp)));
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; ticketing_session=abc.def; x=1"),
        );
        assert_eq!(cookie_token(&headers), Some("abc.def"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("ticketing_session="),
        );
        assert_eq!(cookie_token(&headers), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("ticketing_sessionx=1"),
        );
        assert_eq!(cookie_token(&headers), None);
    }
}
