//! API keys: how they are made, stored and checked, and the extractor that
//! gives handlers the calling account.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{PublicId, Timestamp};
use crate::error::ApiError;
use crate::store::{AccountId, NewApiKey, Store, StoreError};

/// How many leading characters of a key are stored in clear to find it
/// again (and shown in listings). The rest is only ever stored hashed.
pub const KEY_PREFIX_LEN: usize = 12;

const KEY_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 40 base-62 characters: about 238 bits of randomness.
const KEY_RANDOM_CHARS: usize = 40;

/// A freshly made key: the secret to show once, and what to store.
pub struct IssuedKey {
    pub secret: String,
    pub record: NewApiKey,
}

/// Makes a new random key named `name`.
pub fn issue_key(name: &str) -> Result<IssuedKey, getrandom::Error> {
    let mut bytes = [0u8; KEY_RANDOM_CHARS];
    getrandom::fill(&mut bytes)?;
    // 62 does not divide 256; rejection sampling keeps every character
    // equally likely.
    let mut secret = String::from("bb_");
    let mut pool = bytes.to_vec();
    while secret.len() < 3 + KEY_RANDOM_CHARS {
        if pool.is_empty() {
            let mut more = [0u8; KEY_RANDOM_CHARS];
            getrandom::fill(&mut more)?;
            pool.extend_from_slice(&more);
        }
        let byte = pool.pop().unwrap_or_default();
        if usize::from(byte) < 62 * 4 {
            secret.push(char::from(KEY_ALPHABET[usize::from(byte) % 62]));
        }
    }
    Ok(IssuedKey {
        record: stored_key(&secret, name),
        secret,
    })
}

/// What is stored for `secret`: its prefix and hash, never the secret.
pub fn stored_key(secret: &str, name: &str) -> NewApiKey {
    NewApiKey {
        uuid: PublicId::random(),
        name: name.to_owned(),
        prefix: key_prefix(secret).to_owned(),
        secret_hash: hash_key(secret),
        created_at: Timestamp::now(),
    }
}

pub fn key_prefix(secret: &str) -> &str {
    let end = secret
        .char_indices()
        .nth(KEY_PREFIX_LEN)
        .map_or(secret.len(), |(i, _)| i);
    &secret[..end]
}

/// Keys carry at least 128 bits of randomness, so one round of SHA-256 is
/// enough to make a stolen hash useless; a slow hash would only slow every
/// request.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The account a request acts for, established by the API-key check.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: AccountId,
    /// The public part of the key used, as `GET /auth/me` reports it.
    pub key_prefix: String,
}

/// Checks a presented bearer token; `Ok(None)` when it is no valid key.
pub async fn authenticate(store: &dyn Store, token: &str) -> Result<Option<Caller>, StoreError> {
    let presented = hash_key(token);
    let candidates = store.api_keys_with_prefix(key_prefix(token)).await?;
    let mut found = None;
    // Compare against every candidate, in constant time, so timing says
    // nothing about how much of a guess was right.
    for key in candidates {
        let equal: bool = key
            .secret_hash
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into();
        if equal && key.revoked_at.is_none() {
            found = Some(Caller {
                account: key.account_id,
                key_prefix: key.prefix.clone(),
            });
        }
    }
    Ok(found)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    match Credentials::read(header) {
        Credentials::Token(token) => Some(token),
        _ => None,
    }
}

/// What a request's `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No header.
    Missing,
    /// Another scheme than Bearer (`Basic ...`, or a bare key).
    WrongScheme,
    /// `Bearer` with nothing after it, or with what no token can be
    /// (RFC 6750's token characters: letters, digits and `-._~+/`, then
    /// `=` padding).
    Malformed,
    Token(&'a str),
}

impl<'a> Credentials<'a> {
    /// Reads the header leniently: the scheme in any case, spaces around
    /// the token.
    pub fn read(header: Option<&'a str>) -> Credentials<'a> {
        let Some(header) = header.map(str::trim) else {
            return Credentials::Missing;
        };
        let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Credentials::WrongScheme;
        }
        let token = token.trim();
        let body = token.trim_end_matches('=');
        let valid = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if valid {
            Credentials::Token(token)
        } else {
            Credentials::Malformed
        }
    }
}

/// The 401 for a request whose credentials did not authenticate. Says what
/// was wrong without telling whether a key exists: unknown and revoked
/// keys get one answer.
pub fn refusal(credentials: Credentials<'_>) -> ApiError {
    match credentials {
        Credentials::Missing => {
            ApiError::unauthorized(None, "missing API key: send 'Authorization: Bearer <key>'")
        }
        Credentials::WrongScheme => ApiError::unauthorized(
            None,
            "the Authorization header does not use the Bearer scheme: send 'Authorization: Bearer <key>'",
        ),
        Credentials::Malformed => ApiError::unauthorized(
            Some("invalid_request"),
            "the Authorization header's bearer token is empty or malformed",
        ),
        Credentials::Token(_) => ApiError::unauthorized(
            Some("invalid_token"),
            "the API key is unknown or has been revoked",
        ),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| refusal(Credentials::Missing))
    }
}

/// Shortest and longest dashboard password, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=256;

/// Why `password` cannot be one, if it cannot.
pub fn password_problem(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if !PASSWORD_CHARS.contains(&chars) {
        return Some(format!(
            "a password must be {} to {} characters long; this one is {chars}",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        ));
    }
    password
        .trim()
        .is_empty()
        .then(|| "a password cannot be only spaces".to_owned())
}

/// Hashes a dashboard password with argon2id (its default parameters:
/// 19 MiB, 2 passes), as a PHC string holding its own salt. Slow on
/// purpose: run it off the async threads.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::PasswordHasher;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Whether `password` is the one `hash` was made from.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::password_hash::phc::PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_are_long_random_and_only_hashed() {
        let a = issue_key("default").expect("randomness");
        let b = issue_key("default").expect("randomness");
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 43);
        assert!(a.secret.starts_with("bb_"));
        assert!(a.secret[3..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a.record.prefix, &a.secret[..KEY_PREFIX_LEN]);
        assert_eq!(a.record.secret_hash, hash_key(&a.secret));
        assert!(!a.record.secret_hash.contains(&a.secret[KEY_PREFIX_LEN..]));
    }

    #[test]
    fn passwords_are_hashed_with_argon2id_and_verified() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(password_problem("short").is_some());
        assert!(password_problem("          ").is_some());
        assert!(password_problem("long enough").is_none());
    }

    #[test]
    fn prefixes_of_short_tokens_are_the_token() {
        assert_eq!(key_prefix("abc"), "abc");
        assert_eq!(key_prefix("test_gshuPaZoeEG6ovbc8M79w0QyM"), "test_gshuPaZ");
    }

    #[test]
    fn bearer_tokens_are_read_leniently() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(Some("abc")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn credentials_say_what_is_wrong() {
        assert_eq!(Credentials::read(None), Credentials::Missing);
        assert_eq!(
            Credentials::read(Some("Basic dXNlcg==")),
            Credentials::WrongScheme
        );
        assert_eq!(Credentials::read(Some("bb_key")), Credentials::WrongScheme);
        assert_eq!(Credentials::read(Some("Bearer")), Credentials::Malformed);
        assert_eq!(
            Credentials::read(Some("Bearer a b")),
            Credentials::Malformed
        );
        assert_eq!(Credentials::read(Some("Bearer ké")), Credentials::Malformed);
        assert_eq!(
            Credentials::read(Some("Bearer ===")),
            Credentials::Malformed
        );
        assert_eq!(
            Credentials::read(Some("bearer bb_a-b.c~d+e/f==")),
            Credentials::Token("bb_a-b.c~d+e/f==")
        );
    }
}
