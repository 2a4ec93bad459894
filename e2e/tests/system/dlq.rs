//! A poison event: dead-lettered with its reason, others go on, replayed once fixed.

use crate::helpers::on_system;
use async_nats::jetstream;
use e2e::System;
use e2e::eventually;
use e2e::flows;
use e2e::system::Options;

/// An event that keeps failing is retried a bounded number of times, then dead-lettered with
/// its reason while the other sagas go on; once its cause is fixed, replaying it from the DLQ
/// (with `ticketctl dlq`) completes it.
#[tokio::test]
async fn a_poison_event_goes_to_the_dlq_without_blocking_others_and_replays_once_fixed() {
    let opts = Options {
        max_deliver: 2,
        ..Default::default()
    };
    on_system(opts, async |sys| poison(sys).await).await;
}

async fn poison(sys: &System) -> anyhow::Result<()> {
    use contracts::events::{SeatHeld, SeatSold};
    use contracts::{Message, Points, ReservationId, ScheduleId, SeatEvent, SeatId, UserId};
    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let publish = async |event: &SeatEvent| {
        let msg = Message::new("seat-svc", event, None, time::OffsetDateTime::now_utc());
        harness::publish_message(&js, &msg).await
    };

    // A sale whose hold event has not reached reservation-svc: it cannot be applied yet.
    let r = ReservationId::new();
    publish(&SeatEvent::Sold(SeatSold {
        reservation_id: r,
        seat_ids: vec![],
        versions: Default::default(),
    }))
    .await?;

    // Meanwhile other sagas complete.
    let s = flows::open_schedule(sys, "Poison", &[("P1", 100)]).await?;
    let ok = flows::holding(sys, "ok", 100, &s.schedule_id, &s.seat_ids).await?;
    flows::pay(sys, "ok", &ok).await?.expect(202);
    flows::wait_reservation(sys, "ok", &ok, "confirmed").await?;

    // After its two deliveries it is in the DLQ, with why and from where.
    let ticketctl = e2e::service_binary("ticketctl")?;
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(&ticketctl)
            .arg("dlq")
            .args(args)
            .env("NATS_URL", sys.nats.url())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "dlq {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let listed = eventually("the DLQ entry", flows::STEP, async || {
        let out = run(&["list"])?;
        Ok(out.contains(&format!("seat.sold.{r}")).then_some(out))
    })
    .await?;
    assert!(
        listed.contains("reservation-svc") && listed.contains("not known yet"),
        "{listed}"
    );
    let seq = listed.split_whitespace().next().unwrap().to_owned();
    // Every service reports the DLQ's depth.
    let depth = async |want: f64| {
        eventually("dlq_messages", flows::STEP, async || {
            let v = sys.reservation.api().metric("dlq_messages", &[]).await?;
            Ok((v == want).then_some(()))
        })
        .await
    };
    depth(1.0).await?;
    // A dry run says what it would do, and does nothing.
    let dry = run(&[
        "replay",
        "--all",
        "--service",
        "reservation-svc",
        "--dry-run",
    ])?;
    assert!(
        dry.contains("would replay") && dry.contains(&format!("seat.sold.{r}")),
        "{dry}"
    );
    let none = run(&["list", "--service", "payment-svc"])?;
    assert_eq!(
        none.trim(),
        "the DLQ is empty",
        "filtered to another service"
    );
    let shown: serde_json::Value = serde_json::from_str(&run(&["show", &seq])?)?;
    assert_eq!(shown["delivered"], "2");
    assert!(
        shown["reason"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 2 deliveries")
    );

    // The missing hold arrives; replaying the dead letter completes the saga.
    publish(&SeatEvent::Held(SeatHeld {
        reservation_id: r,
        user_id: UserId("late".into()),
        schedule_id: ScheduleId::new(),
        seat_ids: vec![SeatId::new()],
        amount: Points::new(100)?,
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        starts_at: None,
        versions: Default::default(),
    }))
    .await?;
    flows::wait_reservation(sys, "late", &r.to_string(), "awaiting_payment").await?;
    let concert_svc = async || {
        anyhow::Ok(
            js.get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                "concert-svc",
                "SEAT",
            )
            .await?
            .info()
            .await?
            .delivered
            .consumer_sequence,
        )
    };
    let concert_svc_caught_up = async || {
        eventually("concert-svc caught up", flows::STEP, async || {
            Ok(
                nats::messaging::topology::caught_up(&js, "SEAT", "concert-svc")
                    .await?
                    .then_some(()),
            )
        })
        .await
    };
    concert_svc_caught_up().await?;
    let before = concert_svc().await?;
    // Replayed to reservation-svc alone: concert-svc handled the sale already, and a second
    // copy would reach it after newer events.
    let replayed = run(&["replay", "--all"])?;
    assert!(
        replayed.contains(&format!("to seat.replay.reservation-svc.seat.sold.{r}")),
        "{replayed}"
    );
    flows::wait_reservation(sys, "late", &r.to_string(), "confirmed").await?;
    assert_eq!(run(&["list"])?.trim(), "the DLQ is empty");
    depth(0.0).await?;
    concert_svc_caught_up().await?;
    assert_eq!(
        concert_svc().await?,
        before,
        "concert-svc was given the replay"
    );
    Ok(())
}
