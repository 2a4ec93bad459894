//! compose: a reservation as a page shows it. reservation-svc knows seat ids and a schedule id;
//! the gateway adds the concert's title, when the show starts, and each seat's label, grade and
//! price from the catalog (stale if need be), so no page joins two services itself. When the
//! catalog cannot tell, those fields are null and the reservation is still answered.

use crate::catalog::{Read, read};
use crate::config::Upstream;
use crate::proxy::outgoing;
use crate::state::Gateway;
use crate::upstream::Outgoing;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nats::web::Problem;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// What the catalog says of one schedule.
struct Schedule {
    title: Value,
    starts_at: Value,
    /// seat id → {label, grade, price}
    seats: HashMap<String, Value>,
}

/// `GET /api/reservations` and `GET /api/reservations/{id}`, composed with the catalog.
pub async fn reservations(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    match compose(&gw, req).await {
        Ok(resp) => resp,
        Err(problem) => problem.into_response(),
    }
}

async fn compose(gw: &Gateway, req: Request) -> Result<Response, Problem> {
    let out = outgoing(req).await?;
    let resp = gw.upstreams.send(Upstream::Reservation, out).await?;
    if resp.status() != StatusCode::OK {
        return Ok(crate::upstream::relay(resp));
    }
    let mut headers = resp.headers().clone();
    let body = crate::upstream::body(Upstream::Reservation, resp).await?;
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return Err(Problem::internal(
            "reservation-svc answered 200 with no JSON",
        ));
    };
    let mut schedules: HashMap<String, Schedule> = HashMap::new();
    let items: Vec<&mut Value> = match &mut value {
        Value::Array(items) => items.iter_mut().collect(),
        one => vec![one],
    };
    for item in items {
        let Some(object) = item.as_object_mut() else {
            continue;
        };
        let schedule_id = object
            .get("schedule_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !schedules.contains_key(&schedule_id) {
            let schedule = schedule(gw, &schedule_id).await;
            schedules.insert(schedule_id.clone(), schedule);
        }
        add(object, &schedules[&schedule_id]);
    }
    let body = serde_json::to_vec(&value).map_err(Problem::internal)?;
    headers.remove(header::CONTENT_LENGTH);
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().extend(headers);
    Ok(resp)
}

fn add(reservation: &mut Map<String, Value>, schedule: &Schedule) {
    let seats: Vec<Value> = reservation
        .get("seat_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|id| {
            let mut seat = schedule
                .seats
                .get(id)
                .cloned()
                .unwrap_or_else(|| json!({"label": null, "grade": null, "price": null}));
            seat["seat_id"] = json!(id);
            seat
        })
        .collect();
    reservation.insert("concert_title".into(), schedule.title.clone());
    // reservation-svc knows when the show starts from the hold already; the catalog's for the rest.
    if reservation.get("starts_at").is_none_or(Value::is_null) {
        reservation.insert("starts_at".into(), schedule.starts_at.clone());
    }
    reservation.insert("seats".into(), Value::Array(seats));
}

/// What the catalog (fresh or stale) says of the schedule; nulls where it cannot tell.
async fn schedule(gw: &Gateway, id: &str) -> Schedule {
    let catalog = async |path: String| -> Option<Value> {
        match read(gw, Outgoing::get(path, HeaderMap::new())).await {
            Ok(Read::Fresh(body) | Read::Stale(body, _)) => serde_json::from_slice(&body).ok(),
            _ => None,
        }
    };
    let detail = catalog(format!("/schedules/{id}")).await;
    let seats = catalog(format!("/schedules/{id}/seats")).await;
    Schedule {
        title: detail
            .as_ref()
            .map_or(Value::Null, |d| d["concert_title"].clone()),
        starts_at: detail
            .as_ref()
            .map_or(Value::Null, |d| d["starts_at"].clone()),
        seats: seats
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let id = s["seat_id"].as_str()?.to_owned();
                Some((
                    id,
                    json!({"label": s["label"], "grade": s["grade"], "price": s["price"]}),
                ))
            })
            .collect(),
    }
}
