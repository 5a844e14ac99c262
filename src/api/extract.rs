//! Turning raw requests into typed input, with SPEC §1's answers for
//! everything malformed: 415 for a non-JSON body, 413 past the size limit,
//! 400 for broken JSON or a non-object, 422 for fields of the wrong shape,
//! 404 for a malformed id in the path.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::domain::{FieldError, FieldErrors};
use crate::error::{ApiError, ApiResult};

/// A request body that must be a JSON object.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> ApiResult<Self> {
        read_object(req).await.map(JsonObject)
    }
}

async fn read_object(req: Request) -> ApiResult<Map<String, Value>> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let media_type = content_type
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::unsupported_media_type());
        }
    }
    let limit = BodyLimit::of(req.extensions());
    let bytes = read_body(limit, req.into_body()).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body is empty; send a JSON object",
        ));
    }
    parse_object(&bytes)
}

/// A request's whole body, within `limit`: past its size a 413, past its
/// time a 408 (the request then changed nothing).
pub async fn read_body(limit: BodyLimit, body: axum::body::Body) -> ApiResult<Bytes> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    let collect = Limited::new(body, limit.bytes).collect();
    match tokio::time::timeout(limit.timeout, collect).await {
        Err(_) => Err(ApiError::body_timeout(limit.timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::payload_too_large(limit.bytes))
        }
        Ok(Err(_)) => Err(ApiError::bad_request(
            "invalid_body",
            "the request body could not be read",
        )),
    }
}

/// A body as JSON object. Besides plain JSON (a trailing comma before `}` or
/// `]` tolerated), a JSON *string* holding an object is read as that
/// object: axios sends string bodies it cannot parse that way, which is
/// what Callbell's own Node examples for update_funnel do.
pub fn parse_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    let invalid = |e: serde_json::Error| {
        ApiError::bad_request(
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )
    };
    match serde_json::from_slice::<Value>(&tolerate_trailing_commas(bytes)).map_err(invalid)? {
        Value::Object(map) => Ok(map),
        Value::String(inner) if inner.trim_start().starts_with('{') => {
            match serde_json::from_slice::<Value>(&tolerate_trailing_commas(inner.as_bytes()))
                .map_err(invalid)?
            {
                Value::Object(map) => Ok(map),
                _ => Err(not_an_object()),
            }
        }
        _ => Err(not_an_object()),
    }
}

fn not_an_object() -> ApiError {
    ApiError::bad_request("body_not_object", "the request body must be a JSON object")
}

/// Collects the paths of strings (and keys) holding U+0000: no database
/// column may store one (PostgreSQL text cannot), so such input is refused
/// before it gets there.
fn find_nul_characters(map: &Map<String, Value>, prefix: &str, found: &mut Vec<String>) {
    fn visit(value: &Value, path: String, found: &mut Vec<String>) {
        match value {
            Value::String(s) if s.contains('\0') => found.push(path),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    visit(item, format!("{path}[{i}]"), found);
                }
            }
            Value::Object(map) => find_nul_characters(map, &path, found),
            _ => {}
        }
    }
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if key.contains('\0') {
            found.push(path);
            continue;
        }
        visit(value, path, found);
    }
}

/// The body limits in force: its size (for the 413 message) and how long
/// the client may take to send it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    pub bytes: usize,
    pub timeout: Duration,
}

impl BodyLimit {
    /// The limits the router put on this request (none outside it: tests
    /// that build requests by hand).
    pub fn of(extensions: &axum::http::Extensions) -> BodyLimit {
        extensions.get::<BodyLimit>().copied().unwrap_or(BodyLimit {
            bytes: usize::MAX,
            timeout: Duration::MAX,
        })
    }
}

/// Drops a comma that directly precedes `}` or `]` (outside strings).
/// Callbell's own published examples for update_funnel and notes carry
/// one, and programs copied from those docs must keep working; any other
/// malformed JSON is still refused.
fn tolerate_trailing_commas(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    // The last significant byte outside strings: a comma only trails when
    // it follows a value, so `{,}` and `[1,,]` stay malformed.
    let mut last = b' ';
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' && !matches!(last, b'{' | b'[' | b',') {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}' | b']')) {
                out.get_or_insert_with(|| bytes[..i].to_vec());
                last = b;
                continue;
            }
        }
        if !in_string && !b.is_ascii_whitespace() || b == b'"' {
            last = b;
        }
        if let Some(out) = out.as_mut() {
            out.push(b);
        }
    }
    match out {
        Some(out) => Cow::Owned(out),
        None => Cow::Borrowed(bytes),
    }
}

/// Reads the fields of a request object into `T`, whose fields are all
/// optional, collecting one error per field whose value has the wrong
/// shape instead of stopping at the first. `aliases` maps alternative
/// spellings to the canonical key; both given with different values is an
/// error.
pub fn parse_fields<T: DeserializeOwned + Default>(
    mut body: Map<String, Value>,
    aliases: &[(&str, &str)],
) -> (T, FieldErrors) {
    let mut errors = FieldErrors::new();
    for (alias, canonical) in aliases {
        let Some(value) = body.remove(*alias) else {
            continue;
        };
        match body.get(*canonical) {
            Some(existing) if *existing != value => errors.push(FieldError::new(
                *canonical,
                "conflicting_fields",
                format!("'{alias}' and '{canonical}' are the same parameter but were given different values"),
            )),
            Some(_) => {}
            None => {
                body.insert((*canonical).to_owned(), value);
            }
        }
    }
    // Unknown keys are ignored (SPEC §1), so only the keys `T` reads are
    // checked for characters no database column can hold; which keys those
    // are is only worked out when some key or string holds one.
    let mut nul_fields = Vec::new();
    find_nul_characters(&body, "", &mut nul_fields);
    if !nul_fields.is_empty() {
        let mut ignored = Vec::new();
        let _ = serde_ignored::deserialize(&Value::Object(body.clone()), |path| {
            ignored.push(path.to_string());
        })
        .map(|_: T| ());
        for field in nul_fields {
            let key = field
                .split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_owned();
            if ignored.contains(&key) {
                continue;
            }
            let shown = field.replace('\0', "\\0");
            errors.push(FieldError::new(
                shown.clone(),
                "invalid_character",
                format!("'{shown}' contains a NUL character, which no text may hold"),
            ));
            body.remove(&key);
        }
    }
    let body = Value::Object(body);
    if let Ok(parsed) = T::deserialize(&body) {
        return (parsed, errors);
    }
    let Value::Object(mut body) = body else {
        return (T::default(), errors);
    };
    // Try each field alone to find every one that does not fit.
    let keys: Vec<String> = body.keys().cloned().collect();
    for key in keys {
        let mut single = Map::new();
        if let Some(value) = body.get(&key) {
            single.insert(key.clone(), value.clone());
        }
        if let Err(error) = serde_path_to_error::deserialize::<_, T>(Value::Object(single)) {
            let path = error.path().to_string();
            let field = if path == "." || path.is_empty() {
                key.clone()
            } else {
                path
            };
            let problem = describe_serde_error(&error.into_inner().to_string());
            errors.push(FieldError::new(
                field.clone(),
                "invalid_type",
                format!("'{field}' {problem}"),
            ));
            body.remove(&key);
        }
    }
    let parsed = serde_json::from_value::<T>(Value::Object(body)).unwrap_or_default();
    (parsed, errors)
}

/// Rephrases serde's "invalid type: boolean `true`, expected a string" as
/// "must be a string, not boolean `true`"; custom messages pass through.
/// (Numbers keep their literal, so serde names them only as "number".)
fn describe_serde_error(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        let got = if got == "number" { "a number" } else { got };
        return format!("must be {expected}, not {got}");
    }
    message.to_owned()
}

/// The parameters of a query string, in order; a name given twice counts
/// with its last value.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or_default();
        QueryParams::checked(QueryParams::from_urlencoded(query.as_bytes()).0)
    }
}

impl QueryParams {
    /// The parameters, refused when one holds a NUL character.
    pub fn checked(pairs: Vec<(String, String)>) -> ApiResult<Self> {
        let params = QueryParams(pairs);
        if let Some(name) = params.nul_parameter() {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "query parameter '{}' contains a NUL character",
                    name.replace('\0', "")
                ),
            ));
        }
        Ok(params)
    }
}

/// A query-string type that parses itself, with SPEC §1's 400 for bad values.
pub trait FromQuery: Sized {
    fn from_query(query: &QueryParams) -> ApiResult<Self>;
}

/// Extracts a [`FromQuery`] type from the query string.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let query = QueryParams::from_request_parts(parts, state).await?;
        T::from_query(&query).map(Query)
    }
}

/// The deepest page of listings other than contacts' (which stop at 500).
pub const MAX_LIST_PAGE: u32 = 100_000;

/// `?page=N` alone.
#[derive(Debug, Clone, Copy, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The page, from 1.
    #[param(minimum = 1, maximum = 100_000)]
    pub page: Option<u32>,
}

impl PageQuery {
    pub fn number(self) -> u32 {
        self.page.unwrap_or(1)
    }
}

impl FromQuery for PageQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        query.list_page().map(|page| PageQuery { page: Some(page) })
    }
}

impl QueryParams {
    /// The last value sent for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value sent for `name` (a group of checkboxes sends one name
    /// many times).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether `name` was sent at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// The pairs of an `application/x-www-form-urlencoded` text, as sent.
    pub fn from_urlencoded(bytes: &[u8]) -> QueryParams {
        QueryParams(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn nul_parameter(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| k.as_str())
    }

    /// A parameter that, when present, must parse as `T`.
    pub fn parse<T: FromStr>(&self, name: &str, expected: &str) -> ApiResult<Option<T>> {
        match self.get(name).map(str::trim) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("query parameter '{name}' must be {expected}, not '{text}'"),
                )
            }),
        }
    }

    /// `true` or `false`.
    pub fn flag(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name).map(str::trim) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(
                "invalid_query",
                format!("query parameter '{name}' must be true or false, not '{other}'"),
            )),
        }
    }

    /// A 1-based page number. A whole number too large for `u32` is still
    /// a whole number, past any page there is (and past any page limit).
    pub fn page(&self) -> ApiResult<u32> {
        let page = match self.get("page").map(str::trim) {
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse::<u32>().unwrap_or(u32::MAX)
            }
            _ => self
                .parse::<u32>("page", "a whole number from 1")?
                .unwrap_or(1),
        };
        if page == 0 {
            return Err(ApiError::bad_request(
                "invalid_query",
                "query parameter 'page' must be a whole number from 1, not '0'",
            ));
        }
        Ok(page)
    }

    /// A page of a listing that goes up to [`MAX_LIST_PAGE`].
    pub fn list_page(&self) -> ApiResult<u32> {
        let page = self.page()?;
        if page > MAX_LIST_PAGE {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("query parameter 'page' must be at most {MAX_LIST_PAGE}"),
            ));
        }
        Ok(page)
    }
}

/// A path parameter, percent-decoded. One that cannot even be decoded
/// names nothing that exists.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .ok()
            .map(|axum::extract::Path(value): axum::extract::Path<String>| value)
            .filter(|value| !value.contains('\0'))
            .map(PathParam)
            .ok_or_else(|| ApiError::not_found("no such object in this account"))
    }
}

/// Parses an id from the path; one that cannot be ours is simply not found.
pub fn path_id<T: FromStr>(text: &str, what: &str) -> ApiResult<T> {
    text.parse()
        .map_err(|_| ApiError::not_found(format!("{what} '{text}' does not exist in this account")))
}

/// A whole number, also when written with a zero fraction (`219.0`): JSON
/// does not tell the two apart, and some clients write every number so.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    match <Option<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)? {
        None => Ok(None),
        Some(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("must be a whole number")),
    }
}

/// Deserializes `Some(None)` for an explicit `null` and `Some(Some(v))` for
/// a value, so a missing field (`None`) can be told from a cleared one.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Sample {
        name: Option<String>,
        count: Option<u32>,
        tags: Option<Vec<String>>,
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn every_wrongly_typed_field_is_reported() {
        let (parsed, errors) = parse_fields::<Sample>(
            object(json!({"name": 5, "count": "x", "tags": ["a", 7]})),
            &[],
        );
        let errors = errors.into_vec();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "count", "tags[1]"]);
        assert_eq!(errors[0].message, "'name' must be a string, not a number");
        assert!(parsed.name.is_none());
    }

    #[test]
    fn good_fields_survive_bad_neighbours() {
        let (parsed, errors) =
            parse_fields::<Sample>(object(json!({"name": "Ann", "count": -1})), &[]);
        assert_eq!(parsed.name.as_deref(), Some("Ann"));
        assert_eq!(errors.into_vec().len(), 1);
    }

    #[test]
    fn aliases_fold_into_the_canonical_key() {
        let aliases = [("nom", "name")];
        let (parsed, errors) = parse_fields::<Sample>(object(json!({"nom": "Ann"})), &aliases);
        assert_eq!(parsed.name.as_deref(), Some("Ann"));
        assert!(errors.is_empty());

        let (_, errors) =
            parse_fields::<Sample>(object(json!({"nom": "Ann", "name": "Ann"})), &aliases);
        assert!(errors.is_empty());

        let (_, errors) =
            parse_fields::<Sample>(object(json!({"nom": "Ann", "name": "Bob"})), &aliases);
        assert_eq!(errors.into_vec()[0].code, "conflicting_fields");
    }

    #[test]
    fn nul_characters_are_found_anywhere() {
        let body = object(
            json!({"name": "a\u{0}b", "tags": ["ok", "x\u{0}"], "custom_fields": {"k": "\u{0}"}, "n": 1}),
        );
        let mut found = Vec::new();
        find_nul_characters(&body, "", &mut found);
        assert_eq!(found, ["name", "tags[1]", "custom_fields.k"]);
    }

    #[test]
    fn json_strings_holding_objects_are_read_as_the_object() {
        let axios = serde_json::to_vec(&json!("{\n  \"funnel_id\": \"x\",\n }")).expect("json");
        assert_eq!(
            parse_object(&axios).ok(),
            Some(object(json!({"funnel_id": "x"})))
        );
        assert_eq!(
            parse_object(b"{\"a\": 1}").ok(),
            Some(object(json!({"a": 1})))
        );
        for not_object in [&b"\"\""[..], b"\"text\"", b"[1]", b"5", b"\"[1]\"", b"null"] {
            let code = parse_object(not_object).err().map(|e| e.code().to_owned());
            assert_eq!(code.as_deref(), Some("body_not_object"));
        }
        for broken in [&b"{\"a\":"[..], br#""{\"a\": nope}""#] {
            let code = parse_object(broken).err().map(|e| e.code().to_owned());
            assert_eq!(code.as_deref(), Some("invalid_json"));
        }
    }

    #[test]
    fn nul_characters_in_read_fields_are_refused_and_in_ignored_ones_ignored() {
        let body = object(json!({"name": "a\u{0}b", "color": "x\u{0}"}));
        let (parsed, errors) = parse_fields::<Sample>(body, &[]);
        let errors = errors.into_vec();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "name");
        assert_eq!(errors[0].code, "invalid_character");
        assert!(parsed.name.is_none());
    }

    #[test]
    fn trailing_commas_are_tolerated_outside_strings_only() {
        let fixed = tolerate_trailing_commas(b"{\n \"funnel_id\": \"x\",\n }");
        assert_eq!(
            serde_json::from_slice::<Value>(&fixed).ok(),
            Some(json!({"funnel_id": "x"}))
        );
        let fixed = tolerate_trailing_commas(b"[1, 2, ]");
        assert_eq!(
            serde_json::from_slice::<Value>(&fixed).ok(),
            Some(json!([1, 2]))
        );
        let untouched = tolerate_trailing_commas(br#"{"text": "a,}", "b": "\",]"}"#);
        assert!(matches!(untouched, Cow::Borrowed(_)));
        // Other malformations stay malformed.
        assert!(serde_json::from_slice::<Value>(&tolerate_trailing_commas(b"{,}")).is_err());
        assert!(
            serde_json::from_slice::<Value>(&tolerate_trailing_commas(b"{\"a\":1,,}")).is_err()
        );
        assert!(serde_json::from_slice::<Value>(&tolerate_trailing_commas(b"[,]")).is_err());
    }
}
