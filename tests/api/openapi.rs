//! The OpenAPI document served at `/api/v1/openapi.json`: in step with `docs/api.md`, and
//! shaped so outside tools can trust it (`.ci/schemathesis.sh` runs two of them on it).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{spawn_app, Backend, ErrorCode};
use strum::IntoEnumIterator;

const DOCS: &str = include_str!("../../docs/api.md");

/// The live document (it is the same on both backends: routes make it, not data).
async fn document() -> Value {
    let app = spawn_app(Backend::Sqlite).await.expect("a SQLite app");
    app.get_anon("/api/v1/openapi.json")
        .await
        .assert_status(200)
        .clone()
}

fn operations(doc: &Value) -> impl Iterator<Item = (String, &str, &Value)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let ops = item.as_object().expect("a path item").iter();
            ops.map(move |(method, op)| (method.to_uppercase(), path.as_str(), op))
        })
}

/// Every `` `METHOD /api/v1/…` `` that `docs/api.md` names (a query string dropped).
fn documented_endpoints() -> BTreeSet<String> {
    DOCS.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (method, path) = span.split_once(' ')?;
            let known = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method);
            let path = path.split('?').next()?;
            (known && path.starts_with("/api/v1/")).then(|| format!("{method} {path}"))
        })
        // The document itself is served beside the operations, not as one of them.
        .filter(|e| e != "GET /api/v1/openapi.json")
        .collect()
}

/// The codes of the table under `## Error codes` in `docs/api.md`, with their status.
fn documented_codes() -> Vec<(u16, String)> {
    let section = DOCS
        .split("\n## ")
        .find(|s| s.starts_with("Error codes"))
        .expect("docs/api.md has a section `## Error codes`");
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells.get(1)?.parse().ok()?;
            let code = cells.get(2)?.trim_matches('`').to_owned();
            Some((status, code))
        })
        .collect()
}

fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[actix_web::test]
async fn docs_api_md_and_the_document_list_the_same_endpoints() {
    let doc = document().await;
    let served: BTreeSet<String> = operations(&doc)
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    let documented = documented_endpoints();
    assert!(
        served == documented,
        "docs/api.md and /api/v1/openapi.json disagree on the endpoints.\n\
         In the document, not in docs/api.md (document them there, as `METHOD /api/v1/path`): \
         {:?}\nIn docs/api.md, not in the document (annotate the handler with \
         #[utoipa::path] and route it through openapi::Operations, or fix the doc): {:?}",
        difference(&served, &documented),
        difference(&documented, &served),
    );
}

#[actix_web::test]
async fn docs_api_md_and_the_document_list_the_same_error_codes() {
    let doc = document().await;
    let code = &doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"];
    let served: BTreeSet<String> = code
        .as_array()
        .expect("the problem's `code` lists its values")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    let rows = documented_codes();
    let documented: BTreeSet<String> = rows.iter().map(|(_, c)| c.clone()).collect();
    assert!(
        served == documented,
        "docs/api.md (`## Error codes`) and /api/v1/openapi.json (Problem.code) disagree.\n\
         In the document, not in docs/api.md: {:?}\nIn docs/api.md, not in the document \
         (add the code to ErrorCode in src/http/problem.rs, or fix the doc): {:?}",
        difference(&served, &documented),
        difference(&documented, &served),
    );
    assert_eq!(rows.len(), documented.len(), "a code listed twice");
    for code in ErrorCode::iter() {
        let row = rows.iter().find(|(_, c)| c == code.as_str());
        assert_eq!(
            row.map(|(s, _)| *s),
            Some(code.status().as_u16()),
            "docs/api.md gives `{code}` another status than the service answers"
        );
    }
}

#[actix_web::test]
async fn the_document_declares_what_validators_and_clients_need() {
    let doc = document().await;
    for (method, path, op) in operations(&doc) {
        let at = format!("{method} {path}");
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let declared =
            |name: &str, place: &str| params.iter().any(|p| p["name"] == name && p["in"] == place);
        // Every `{name}` of the path is a declared path parameter.
        for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
            assert!(declared(name, "path"), "{at}: path parameter {name}");
        }
        // Refusals and failures are problems, in their own media type.
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"].as_object().expect("a problem body");
                let types: Vec<&String> = content.keys().collect();
                assert_eq!(types, ["application/problem+json"], "{at} {status}");
            }
        }
        for range in ["4XX", "5XX"] {
            assert!(responses.contains_key(range), "{at}: {range}");
        }
        // A call that takes If-Match says so, with its 412.
        let order_step = path.starts_with("/api/v1/work-orders/{id}/")
            && method == "POST"
            && !path.ends_with("/evidence");
        // A hall's changes compare its version too.
        let hall_change = path == "/api/v1/halls/{id}" && method == "PATCH"
            || path.starts_with("/api/v1/halls/{id}/") && path.ends_with("activate");
        let step = order_step || hall_change;
        assert_eq!(declared("If-Match", "header"), step, "{at}: If-Match");
        assert_eq!(responses.contains_key("412"), step, "{at}: 412");
        // Bytes are bytes, not arrays of integers.
        let bodies = [&op["requestBody"]["content"]]
            .into_iter()
            .chain(responses.values().map(|r| &r["content"]));
        for content in bodies.filter_map(Value::as_object) {
            for media in content.values() {
                assert_ne!(media["schema"]["type"], "array", "{at}: {media}");
            }
        }
    }
    let upload = &doc["paths"]["/api/v1/work-orders/{id}/evidence"]["post"];
    let types: BTreeSet<&String> = upload["requestBody"]["content"]
        .as_object()
        .expect("upload types")
        .keys()
        .collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["application/pdf", "image/jpeg", "image/png"]
    );
    // The login is the one operation without the bearer token.
    let login = &doc["paths"]["/api/v1/auth/token"]["post"];
    assert_eq!(login["security"], serde_json::json!([]));
    let texts = doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .iter()
        .filter(|(name, _)| name.starts_with("Text"));
    for (name, schema) in texts {
        assert!(schema["maxLength"].as_u64().is_some(), "{name} is bounded");
    }
}
