//! Seeing every saga: the trace of the command that paid, on every event it caused (read back
//! by an independent client); `ticketctl saga show` for each way a saga ends; a saga frozen by
//! a stopped payment-svc counted and listed as stuck, and no longer once it is restarted.

use crate::helpers::on_system;
use async_nats::jetstream;
use e2e::system::Options;
use e2e::{Frontend, System, eventually, flows};
use std::time::Duration;

/// The traceparent the payment is sent with: the W3C spec's example trace id.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Every message on the bus whose subject ends in `id`, as (stream sequence order within each
/// stream) `(type, headers)`, read with plain JetStream calls (no code of the services).
async fn saga_messages(
    sys: &System,
    id: &str,
) -> anyhow::Result<Vec<(String, async_nats::HeaderMap)>> {
    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let mut out = Vec::new();
    for stream in ["CONCERT", "SEAT", "RESERVATION", "PAYMENT"] {
        let stream = js.get_stream(stream).await?;
        let state = stream.get_info().await?.state;
        if state.messages == 0 {
            continue;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let msg = stream.get_raw_message(seq).await?;
            if msg.subject.ends_with(id) {
                let ce_type = msg
                    .headers
                    .get("ce-type")
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                out.push((ce_type, msg.headers));
            }
        }
    }
    Ok(out)
}

/// A saga of `user`'s paid with the traceparent of [`TRACE_ID`], once it is confirmed.
async fn paid_in_trace(sys: &System, user: &str) -> anyhow::Result<String> {
    let s = flows::open_schedule(sys, &format!("{user}'s show"), &[("S1", 100)]).await?;
    let id = flows::holding(sys, user, 100, &s.schedule_id, &s.seat_ids).await?;
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    sys.reservation
        .api()
        .send(
            reqwest::Method::POST,
            &format!("/reservations/{id}/payment"),
            Some(&sys.user_token(user)),
            &[("traceparent", &traceparent)],
            Some(harness::RawBody::Json(&serde_json::json!({}))),
        )
        .await?
        .expect(202);
    flows::wait_reservation(sys, user, &id, "confirmed").await?;
    Ok(id)
}

fn trace_id(headers: &async_nats::HeaderMap) -> String {
    headers
        .get("traceparent")
        .map(|v| v.as_str().split('-').nth(1).unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_event_a_payment_causes_carries_the_payments_trace() {
    let opts = Options {
        log_json: true,
        ..Default::default()
    };
    on_system(opts, async |sys| {
        let id = paid_in_trace(sys, "tracy").await?;
        let caused = [
            "reservation.payment_requested.v1",
            "payment.completed.v1",
            "seat.sold.v1",
            "reservation.confirmed.v1",
        ];
        let messages = eventually(
            "every event of the payment on the bus",
            flows::STEP,
            async || {
                let m = saga_messages(sys, &id).await?;
                let all = caused.iter().all(|t| m.iter().any(|(ty, _)| ty == t));
                Ok(all.then_some(m))
            },
        )
        .await?;
        for (ce_type, headers) in &messages {
            if caused.contains(&ce_type.as_str()) {
                assert_eq!(
                    trace_id(headers),
                    TRACE_ID,
                    "{ce_type} is not in the payment's trace"
                );
            }
        }
        // The hold was its own command: a trace of its own, begun by seat-svc.
        let (_, held) = messages
            .iter()
            .find(|(t, _)| t == "seat.held.v1")
            .expect("the hold's event");
        let held_trace = trace_id(held);
        assert!(
            held_trace.len() == 32 && held_trace != TRACE_ID,
            "{held_trace}"
        );
        Ok(())
    })
    .await;
}

/// `ticketctl <args>` against the system's bus.
fn ticketctl(sys: &System, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(e2e::service_binary("ticketctl")?)
        .args(args)
        .env("NATS_URL", sys.nats.url())
        .env("RESERVATION_URL", sys.reservation.url())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "ticketctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The event types `ticketctl saga show` printed, in order.
fn shown_types(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.ends_with(".v1")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn ticketctl_shows_a_confirmed_a_failed_an_expired_and_a_cancelled_saga_in_order() {
    let opts = Options {
        hold_ttl_secs: 4,
        ..Default::default()
    };
    on_system(opts, async |sys| {
        let s = flows::open_schedule(sys, "Timelines", &flows::numbered_seats("L", 4, 100)).await?;
        let e2e::endings::Endings {
            confirmed,
            failed,
            cancelled,
            expired,
        } = e2e::endings::one_of_each_ending(sys, &s.schedule_id, &s.seat_ids).await?;
        sys.settle(Duration::from_secs(30)).await?;

        for (id, expected) in [
            (
                &confirmed,
                &[
                    "seat.held.v1",
                    "reservation.payment_requested.v1",
                    "payment.completed.v1",
                    "seat.sold.v1",
                    "reservation.confirmed.v1",
                ][..],
            ),
            (
                &failed,
                &[
                    "seat.held.v1",
                    "reservation.payment_requested.v1",
                    "payment.failed.v1",
                    "seat.released.v1",
                ][..],
            ),
            (
                &cancelled,
                &[
                    "seat.held.v1",
                    "reservation.cancelled.v1",
                    "seat.released.v1",
                ][..],
            ),
            (&expired, &["seat.held.v1", "seat.released.v1"][..]),
        ] {
            let out = ticketctl(sys, &["saga", "show", id])?;
            assert_eq!(shown_types(&out), expected, "saga {id}:\n{out}");
            // Every consumer of every event has acked it: nothing left behind.
            assert!(
                !out.contains("pending") && !out.contains("dead_lettered"),
                "{out}"
            );
            assert!(out.contains("acked"), "{out}");
            let json: serde_json::Value =
                serde_json::from_str(&ticketctl(sys, &["saga", "show", id, "--json"])?)?;
            let steps = json.as_array().expect("a list of steps");
            assert!(
                steps[0]["after_ms"].is_null() && steps[1]["after_ms"].is_i64(),
                "{json}"
            );
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_saga_frozen_by_a_stopped_payment_service_is_stuck_until_it_is_back() {
    let opts = Options {
        saga_stuck_after_secs: 2,
        ..Default::default()
    };
    on_system(opts, async |sys| {
        let s = flows::open_schedule(sys, "Frozen", &[("F1", 100)]).await?;
        let id = flows::holding(sys, "fay", 100, &s.schedule_id, &s.seat_ids).await?;
        sys.payment.kill();
        sys.let_go("payment-svc").await?;
        flows::pay(sys, "fay", &id).await?.expect(202);
        let api = sys.reservation.api();
        let admin = sys.admin_token();
        let stuck = eventually(
            "the saga listed as stuck",
            Duration::from_secs(10),
            async || {
                let r = api
                    .get("/admin/sagas/stuck", Some(&admin))
                    .await?
                    .expect(200);
                Ok(r.body
                    .as_array()
                    .is_some_and(|l| !l.is_empty())
                    .then_some(r.body))
            },
        )
        .await?;
        assert_eq!(stuck[0]["id"], id.as_str(), "{stuck}");
        assert_eq!(stuck[0]["status"], "payment_pending");
        assert!(
            stuck[0]["waiting_for"]
                .as_str()
                .unwrap()
                .contains("payment-svc"),
            "{stuck}"
        );
        eventually(
            "sagas_stuck to count it",
            Duration::from_secs(10),
            async || Ok((api.metric("sagas_stuck", &[]).await? == 1.0).then_some(())),
        )
        .await?;
        let listed = ticketctl(sys, &["saga", "stuck", "--token", &admin])?;
        assert!(
            listed.contains(&id) && listed.contains("payment_pending"),
            "{listed}"
        );

        sys.payment.restart()?;
        flows::wait_reservation(sys, "fay", &id, "confirmed").await?;
        eventually(
            "the saga no longer stuck",
            Duration::from_secs(10),
            async || {
                let r = api
                    .get("/admin/sagas/stuck", Some(&admin))
                    .await?
                    .expect(200);
                let gone = r.body.as_array().is_some_and(Vec::is_empty)
                    && api.metric("sagas_stuck", &[]).await? == 0.0;
                Ok(gone.then_some(()))
            },
        )
        .await?;
        // Only an admin may look.
        api.get("/admin/sagas/stuck", Some(&sys.user_token("fay")))
            .await?
            .expect_problem(403, "admin-only");
        Ok(())
    })
    .await;
}

/// An OTLP/HTTP receiver: keeps the body of every export it is sent (protobuf, read here as
/// bytes: what is looked for are ids and names, which protobuf stores as they are).
async fn otlp_receiver() -> anyhow::Result<(String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>)> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut conn = tokio::io::BufReader::new(socket);
                loop {
                    let (mut line, mut length) = (String::new(), 0usize);
                    // The request line and headers, then the body by its length.
                    loop {
                        line.clear();
                        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if conn.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    kept.lock().expect("not poisoned").extend_from_slice(&body);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if conn.get_mut().write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, received))
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn spans_are_exported_over_otlp_and_each_event_names_the_span_that_emitted_it() {
    let (endpoint, received) = otlp_receiver().await.expect("an OTLP receiver");
    let opts = Options {
        otlp_endpoint: Some(endpoint),
        ..Default::default()
    };
    on_system(opts, async |sys| {
        let id = paid_in_trace(sys, "xena").await?;
        let messages = eventually("the confirmation on the bus", flows::STEP, async || {
            let m = saga_messages(sys, &id).await?;
            Ok(m.iter()
                .any(|(t, _)| t == "reservation.confirmed.v1")
                .then_some(m))
        })
        .await?;
        // Each event the payment caused names, as its parent, a span that was exported.
        let parents: Vec<Vec<u8>> = messages
            .iter()
            .filter(|(_, h)| trace_id(h) == TRACE_ID)
            .filter_map(|(_, h)| {
                h.get("traceparent")
                    .and_then(|v| v.as_str().split('-').nth(2).map(hex_bytes))
            })
            .collect();
        assert!(parents.len() >= 4, "{parents:?}");
        eventually("every span exported", flows::STEP, async || {
            let got = received.lock().expect("not poisoned").clone();
            let all = contains(&got, &hex_bytes(TRACE_ID))
                && parents.iter().all(|p| contains(&got, p))
                && ["reservation-svc", "payment-svc", "seat-svc"]
                    .iter()
                    .all(|s| contains(&got, s.as_bytes()))
                && ["http request", "unit of work", "handle event", "publish"]
                    .iter()
                    .all(|n| contains(&got, n.as_bytes()));
            Ok(all.then_some(()))
        })
        .await?;
        Ok(())
    })
    .await;
}
