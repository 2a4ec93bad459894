//! docs: the API as the frontend sees it — the four services' OpenAPI documents merged under
//! `/api` (each fetched from the service, the last good copy kept), the gateway's own routes and
//! problem types added; `GET /api/docs` renders it as a readable reference, and
//! `GET /problems/{slug}` tells what any problem `type` the gateway passes on means.

use crate::config::Upstream;
use crate::state::Gateway;
use crate::upstream::Outgoing;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nats::web::{Problem, ProblemType, kinds};
use serde_json::{Value, json};
use std::sync::Arc;

/// The services' routes that stay theirs: operators reach them on each service, not through the
/// gateway.
const NOT_PUBLISHED: [&str; 5] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/problems/{slug}",
];

/// The problem types the gateway answers itself.
pub fn problems() -> Vec<ProblemType> {
    let mut all = kinds::ALL.to_vec();
    all.extend([
        crate::upstream::UPSTREAM_UNAVAILABLE,
        crate::upstream::UPSTREAM_TIMED_OUT,
        crate::identity::DEV_LOGIN_OFF,
        crate::identity::INVALID_LOGIN,
    ]);
    all
}

/// The service's document: fetched now, or the copy kept from before.
async fn document(gw: &Gateway, which: Upstream) -> Option<Value> {
    let fetched = match gw
        .upstreams
        .send(which, Outgoing::get("/openapi.json", HeaderMap::new()))
        .await
    {
        Ok(resp) if resp.status() == StatusCode::OK => resp.json::<Value>().await.ok(),
        _ => None,
    };
    match fetched {
        Some(doc) => {
            gw.documents.keep(which, doc.clone());
            Some(doc)
        }
        None => gw.documents.kept(which),
    }
}

/// `GET /api/openapi.json`.
pub async fn openapi(State(gw): State<Arc<Gateway>>) -> Response {
    let mut merged: Value = serde_json::from_str(include_str!("../web/gateway-openapi.json"))
        .expect("the gateway's own document is JSON");
    merged["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let mut missing = Vec::new();
    for which in Upstream::ALL {
        let Some(doc) = document(&gw, which).await else {
            missing.push(which.name());
            continue;
        };
        merge(&mut merged, &doc);
    }
    compose_reservation(&mut merged);
    let gateway_types: Vec<Value> = problems().iter().map(|k| json!(k.uri())).collect();
    union_enum(
        &mut merged["components"]["schemas"]["Problem"],
        &gateway_types,
    );
    if !missing.is_empty() {
        merged["info"]["description"] = json!(format!(
            "{} (Not included now: {} did not answer.)",
            merged["info"]["description"].as_str().unwrap_or_default(),
            missing.join(", ")
        ));
    }
    axum::Json(merged).into_response()
}

/// Adds a service's paths under `/api` and its components.
fn merge(merged: &mut Value, doc: &Value) {
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        if !NOT_PUBLISHED.contains(&path.as_str()) {
            merged["paths"][format!("/api{path}")] = item.clone();
        }
    }
    for section in ["schemas", "securitySchemes"] {
        for (name, schema) in doc["components"][section].as_object().into_iter().flatten() {
            let slot = &mut merged["components"][section][name];
            if slot.is_null() {
                *slot = schema.clone();
            } else if let Some(values) = schema["properties"]["type"]["enum"].as_array() {
                // Each service lists the problem types it answers: the gateway answers them all.
                union_enum(slot, values);
            }
        }
    }
}

/// The reservation as the gateway answers it: with the catalog's fields ([`crate::compose`]).
fn compose_reservation(merged: &mut Value) {
    let properties = &mut merged["components"]["schemas"]["Reservation"]["properties"];
    if properties.is_object() {
        properties["concert_title"] = json!({"type": ["string", "null"]});
        properties["starts_at"] = json!({"type": ["string", "null"], "format": "date-time"});
        properties["seats"] = json!({
            "type": "array",
            "items": {"$ref": "#/components/schemas/ComposedSeat"}
        });
    }
}

fn union_enum(schema: &mut Value, values: &[Value]) {
    let Some(list) = schema["properties"]["type"]["enum"].as_array_mut() else {
        return;
    };
    for v in values {
        if !list.contains(v) {
            list.push(v.clone());
        }
    }
}

/// `GET /problems/{slug}`: the gateway's own types, else the first service that knows it.
pub async fn problem(State(gw): State<Arc<Gateway>>, Path(slug): Path<String>) -> Response {
    if let Some(kind) = problems().into_iter().find(|k| k.slug == slug) {
        return axum::Json(json!({
            "type": kind.uri(),
            "title": kind.title,
            "status": kind.status.as_u16(),
        }))
        .into_response();
    }
    if slug.len() <= 64 && slug.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
        for which in Upstream::ALL {
            let path = format!("/problems/{slug}");
            if let Ok(resp) = gw
                .upstreams
                .send(which, Outgoing::get(path, HeaderMap::new()))
                .await
                && resp.status() == StatusCode::OK
            {
                return crate::upstream::relay(resp);
            }
        }
    }
    Problem::new(kinds::NOT_FOUND, format!("no problem type {slug:?}")).into_response()
}
