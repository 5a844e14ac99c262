//! Checks every response the integration tests receive against the OpenAPI
//! document: the status must be documented for the operation, and the body
//! must validate against the documented schema.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

/// (path template, method, status).
type ResponseKey = (String, String, String);

struct Document {
    json: Value,
    /// Compiled validators of the documented response bodies.
    validators: Mutex<HashMap<ResponseKey, Option<Arc<jsonschema::Validator>>>>,
}

fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| Document {
        json: serde_json::to_value(bellbook::api::openapi::document())
            .expect("document serializes"),
        validators: Mutex::new(HashMap::new()),
    })
}

/// The document's path template that `path` (relative to `/v1`) falls
/// under, preferring literal segments over parameters.
pub fn template_for(document: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let paths = document["paths"].as_object()?;
    paths
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literals = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literals += 1;
                } else {
                    return None;
                }
            }
            Some((literals, template.clone()))
        })
        .max_by_key(|(literals, _)| *literals)
        .map(|(_, template)| template)
}

/// Panics when a response contradicts the document.
pub fn check(method: &str, url_path: &str, status: u16, body: &Value, text: &str) {
    let Some(path) = url_path.strip_prefix("/v1") else {
        return;
    };
    let document = document();
    let method = method.to_ascii_lowercase();
    let Some(template) = template_for(&document.json, path) else {
        // No route, but still counted by the rate limit.
        assert!(
            status == 404 || status == 429,
            "{method} {url_path} is not in the document, yet answered {status}: {text}"
        );
        return;
    };
    let operation = &document.json["paths"][&template][&method];
    if operation.is_null() {
        assert_eq!(
            status, 405,
            "{method} {template} is not in the document, yet answered {status}: {text}"
        );
        return;
    }
    let status_key = status.to_string();
    let key = (template.clone(), method.clone(), status_key.clone());
    let validator = {
        let mut validators = document
            .validators
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        validators
            .entry(key)
            .or_insert_with(|| {
                let response = &operation["responses"][&status_key];
                assert!(
                    !response.is_null(),
                    "{method} {template} answered {status}, which the document does not list: {text}"
                );
                let schema = &response["content"]["application/json"]["schema"];
                if schema.is_null() {
                    return None;
                }
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "components": document.json["components"],
                    "allOf": [schema],
                });
                Some(Arc::new(
                    jsonschema::validator_for(&root).expect("the document's schemas compile"),
                ))
            })
            .clone()
    };
    if let Some(validator) = validator {
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {url_path} → {status} contradicts the document: {errors:?}\nbody: {text}"
        );
    }
}

/// Panics when `value` does not validate against the document's
/// component schema `name`.
pub fn check_schema(name: &str, value: &Value) {
    let document = document();
    assert!(
        !document.json["components"]["schemas"][name].is_null(),
        "the document has no schema {name}"
    );
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document.json["components"],
        "$ref": format!("#/components/schemas/{name}"),
    });
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{value} is not a {name}: {errors:?}");
}

#[test]
fn a_response_that_contradicts_the_document_is_caught() {
    let wrong_type = std::panic::catch_unwind(|| {
        check("GET", "/v1/auth/me", 200, &json!({"status": 5}), "{}");
    });
    assert!(wrong_type.is_err(), "a wrongly typed body passed");
    let undocumented_status = std::panic::catch_unwind(|| {
        check("GET", "/v1/auth/me", 418, &Value::Null, "");
    });
    assert!(
        undocumented_status.is_err(),
        "an undocumented status passed"
    );
    check(
        "GET",
        "/v1/auth/me",
        200,
        &json!({"status": "ok", "user_email": "a@b.co", "user_name": "A", "api_key": "bb_x"}),
        "",
    );
}

#[test]
fn paths_match_their_templates() {
    let document = &document().json;
    assert_eq!(
        template_for(document, "/contacts/phone/123").as_deref(),
        Some("/contacts/phone/{number}")
    );
    assert_eq!(
        template_for(document, "/contacts/abc").as_deref(),
        Some("/contacts/{uuid}")
    );
    assert_eq!(
        template_for(document, "/contacts/abc/bot").as_deref(),
        Some("/contacts/{uuid}/bot")
    );
    assert_eq!(template_for(document, "/nothing/here"), None);
}
