//! housekeeping: what keeps a service's own tables bounded. Published outbox rows, handled
//! inbox ids and commands' idempotency keys older than their retention windows are deleted in
//! short batches, and an operator can have the relay publish a time range of the outbox again.

use crate::unit_of_work::{UnitOfWork, inbox, outbox};
use crate::web::command;
use std::time::Duration;

/// How often what is past its retention is deleted, unless `HOUSEKEEPING_EVERY_SECS` says.
pub const EVERY: Duration = Duration::from_secs(600);

/// How long published events and handled event ids are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Published outbox rows: the range an operator can publish again.
    pub outbox: Duration,
    /// Handled inbox ids: how far back a redelivered or re-published event is still recognised.
    pub inbox: Duration,
    /// Commands' idempotency keys: how long a client may send a command again and get its
    /// first answer.
    pub keys: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            outbox: Duration::from_secs(7 * 24 * 3600),
            inbox: Duration::from_secs(30 * 24 * 3600),
            keys: Duration::from_secs(24 * 3600),
        }
    }
}

impl Retention {
    /// Refuses a window that would let an event apply twice: a re-published outbox row older
    /// than the consumers' inbox memory would not be recognised.
    pub fn checked(self) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.inbox >= self.outbox,
            "INBOX_RETENTION_SECS ({}) must be at least OUTBOX_RETENTION_SECS ({}): a re-published \
             event older than the inbox remembers would be applied twice",
            self.inbox.as_secs(),
            self.outbox.as_secs()
        );
        Ok(self)
    }
}

/// What one sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub outbox_rows: u64,
    pub inbox_ids: u64,
    pub keys: u64,
}

/// Deletes what is older than `retention`, a batch per unit of work, until nothing is left.
pub async fn sweep(uow: &UnitOfWork, retention: Retention) -> anyhow::Result<Swept> {
    let mut swept = Swept::default();
    loop {
        let (rows, ids, keys) = uow
            .run(move |w| {
                Box::pin(async move {
                    let now = w.now_ms();
                    let rows =
                        outbox::sweep(w, now.saturating_sub(millis(retention.outbox))).await?;
                    let before = |window| now.saturating_sub(millis(window));
                    let ids = inbox::RETAINED
                        .sweep(w, before(retention.inbox), outbox::SWEEP_ROWS)
                        .await?;
                    let keys = command::RETAINED
                        .sweep(w, before(retention.keys), outbox::SWEEP_ROWS)
                        .await?;
                    Ok((rows, ids, keys))
                })
            })
            .await?;
        swept.outbox_rows += rows;
        swept.inbox_ids += ids;
        swept.keys += keys;
        let full = outbox::SWEEP_ROWS as u64;
        if rows < full && ids < full && keys < full {
            break;
        }
    }
    if swept != Swept::default() {
        tracing::info!(?swept, "deleted what is past its retention");
    }
    Ok(swept)
}

/// Has the relay publish again the events committed in `[from, to)`; returns how many.
pub async fn republish(
    uow: &UnitOfWork,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
) -> anyhow::Result<u64> {
    let (from, to) = (crate::db::to_millis(from), crate::db::to_millis(to));
    uow.run(move |w| Box::pin(async move { outbox::republish(w, from, to).await }))
        .await
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
