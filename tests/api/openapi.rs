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

/// utoipa names a schema after its Rust type, without the module: two types
/// of one name would silently share one entry of the document (it happened
/// twice). Every type that has a schema must have its own name.
#[test]
fn schema_type_names_are_unique() {
    fn rust_files(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut names: Vec<(String, String)> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source file");
        let mut derives_schema = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("#[derive(") {
                derives_schema = line.contains("ToSchema");
                continue;
            }
            let declared = line
                .strip_prefix("pub struct ")
                .or_else(|| line.strip_prefix("pub enum "))
                .filter(|_| derives_schema);
            let implemented = line
                .strip_prefix("impl ToSchema for ")
                .map(|rest| rest.rsplit("::").next().unwrap_or(rest));
            if let Some(rest) = declared.or(implemented) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push((name, file.display().to_string()));
                derives_schema = false;
            } else if !line.starts_with("#[") && !line.starts_with("///") {
                derives_schema = false;
            }
        }
    }
    assert!(
        names.len() > 40,
        "the scan found the schema types: {names:?}"
    );
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (name, file) in &names {
        if let Some(other) = seen.insert(name, file) {
            panic!("two schema types are named {name}: in {other} and {file}");
        }
    }
}
