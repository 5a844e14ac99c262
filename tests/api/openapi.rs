//! The OpenAPI document: served without a key, and complete.

use serde_json::Value;

use crate::helpers::{Backend, TestApp, send};
use crate::on_both_backends;

async fn the_document_is_served_without_a_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = send(app.client.get(app.url("/openapi.json"))).await;
    reply.assert_status(200);
    assert_eq!(reply.body["openapi"], "3.1.0");
    assert_eq!(reply.body["servers"][0]["url"], "/v1");
    assert!(reply.body["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(
        reply.body,
        serde_json::to_value(bellbook::api::openapi::document()).expect("json")
    );
}

/// A route exists only if the document has it, and the document has only
/// routes that exist.
async fn every_route_is_documented(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let document = send(app.client.get(app.url("/openapi.json"))).await.body;
    let paths = document["paths"].as_object().expect("paths");
    for (method, path) in bellbook::api::ROUTES {
        let operation = &paths.get(*path).unwrap_or(&Value::Null)[*method];
        assert!(
            operation.is_object(),
            "{method} {path} is a route the document lacks"
        );
        assert!(
            operation["responses"]["200"].is_object(),
            "{method} {path} documents no success"
        );
        for status in ["400", "401", "404", "422", "429", "500", "503"] {
            assert!(
                operation["responses"][status].is_object(),
                "{method} {path} lacks {status}"
            );
        }
        for parameter in path.split('/').filter(|s| s.starts_with('{')) {
            let name = parameter.trim_matches(|c| c == '{' || c == '}');
            let documented = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
            assert!(
                documented,
                "{method} {path} does not document its path parameter {name}"
            );
        }
    }
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let routed = path == "/openapi.json"
                || bellbook::api::ROUTES
                    .iter()
                    .any(|(m, p)| m == method && p == path);
            assert!(
                routed,
                "the document lists {method} {path}, which is no route"
            );
        }
    }
}

async fn request_bodies_have_schemas(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let document = send(app.client.get(app.url("/openapi.json"))).await.body;
    let contact = &document["paths"]["/contacts"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(contact["$ref"], "#/components/schemas/CreateContactRequest");
    let schema = &document["components"]["schemas"]["CreateContactRequest"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, ["identifier", "source", "name"]);
    assert_eq!(
        document["components"]["schemas"]["Source"]["enum"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

on_both_backends!(
    the_document_is_served_without_a_key,
    every_route_is_documented,
    request_bodies_have_schemas,
);
