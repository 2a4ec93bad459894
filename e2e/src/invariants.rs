//! invariants: the checker every end-to-end and fault run finishes with. It reads what the four
//! services hold through their audit functions (never their tables) and verifies invariants 1–4
//! of the design: no seat sold or held twice, points conserved, every saga terminal with all
//! services agreeing, and the availability view equal to seat-svc's truth.

use contracts::{Points, ReservationId, SeatId, UserId};
use nats::db::Db;
use payment_svc::audit::PaymentAudit;
use payment_svc::wallet::domain::EntryKind;
use reservation_svc::domain::Status;
use seat_svc::holds::HoldStatus;
use seat_svc::holds::store::HoldRow;
use seat_svc::inventory::SeatStatus;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where each service keeps its state.
#[derive(Clone, Debug)]
pub struct Databases {
    pub concert: String,
    pub seat: String,
    pub reservation: String,
    pub payment: String,
}

/// The four services' databases, connected once, to read through their audit functions.
pub struct Audits {
    pub concert: Db,
    pub seat: Db,
    pub reservation: Db,
    pub payment: Db,
}

impl Audits {
    pub async fn connect(dbs: &Databases) -> anyhow::Result<Audits> {
        Ok(Audits {
            concert: Db::connect(&dbs.concert).await?,
            seat: Db::connect(&dbs.seat).await?,
            reservation: Db::connect(&dbs.reservation).await?,
            payment: Db::connect(&dbs.payment).await?,
        })
    }
}

#[derive(Debug, Default)]
pub struct Report {
    /// Reservations by status at reservation-svc.
    pub outcomes: BTreeMap<String, usize>,
    /// Sagas not yet in a terminal status.
    pub unfinished: usize,
    /// Events committed and not yet published, over all services (0 once the outboxes drained).
    pub unpublished: i64,
    pub violations: Vec<String>,
}

impl Report {
    pub fn sagas(&self) -> usize {
        self.outcomes.values().sum()
    }

    pub fn is_clean(&self) -> bool {
        self.unfinished == 0 && self.unpublished == 0 && self.violations.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} sagas {:?}", self.sagas(), self.outcomes)?;
        if self.unfinished > 0 {
            write!(f, ", {} unfinished", self.unfinished)?;
        }
        if self.unpublished > 0 {
            write!(f, ", {} events not published yet", self.unpublished)?;
        }
        write!(f, ", {} violations", self.violations.len())?;
        for v in self.violations.iter().take(20) {
            write!(f, "\n  - {v}")?;
        }
        Ok(())
    }
}

/// The hold status a seat of that status belongs to.
fn holding(seat: SeatStatus) -> Option<HoldStatus> {
    match seat {
        SeatStatus::Available => None,
        SeatStatus::Held => Some(HoldStatus::Held),
        SeatStatus::Sold => Some(HoldStatus::Sold),
    }
}

/// 1. No seat is sold to, or live-held by, two reservations; seats and holds agree.
fn seats_held_once(
    seats: &[seat_svc::inventory::store::SeatRow],
    holds: &HashMap<ReservationId, HoldRow>,
    violations: &mut Vec<String>,
) {
    let mut owners: HashMap<SeatId, Vec<ReservationId>> = HashMap::new();
    for (id, h) in holds {
        if matches!(h.status, HoldStatus::Held | HoldStatus::Sold) {
            for s in &h.seats {
                owners.entry(*s).or_default().push(*id);
            }
        }
    }
    for (s, who) in &owners {
        if who.len() > 1 {
            violations.push(format!(
                "seat {s} is held or sold by {} reservations: {who:?}",
                who.len()
            ));
        }
    }
    for s in seats {
        let owner = owners.get(&s.id).and_then(|w| w.first()).copied();
        let agrees = match (holding(s.status), s.reservation, owner) {
            (None, None, None) => true,
            (Some(st), Some(r), Some(o)) => r == o && holds[&o].status == st,
            _ => false,
        };
        if !agrees {
            violations.push(format!(
                "seat {} is {} for {:?} but the holds say {owner:?}",
                s.id, s.status, s.reservation
            ));
        }
    }
}

/// 2. Points are conserved, per user; answers each reservation's net charge.
fn points_conserved(
    payment: PaymentAudit,
    violations: &mut Vec<String>,
) -> HashMap<ReservationId, i64> {
    let mut net: HashMap<ReservationId, i64> = HashMap::new();
    // (charges, debits − refunds) per user.
    let mut per_user: HashMap<UserId, (i64, i64)> = HashMap::new();
    for e in payment.ledger {
        let amount = e.amount.value();
        let sign = match e.kind {
            EntryKind::Charge => {
                per_user.entry(e.user).or_default().0 += amount;
                continue;
            }
            EntryKind::Debit => 1,
            EntryKind::Refund => -1,
        };
        per_user.entry(e.user).or_default().1 += sign * amount;
        match e.reservation_id {
            Some(r) => *net.entry(r).or_default() += sign * amount,
            None => violations.push(format!("a {} of {amount} for no reservation", e.kind)),
        }
    }
    for w in payment.wallets {
        let (charged, balance) = (w.charged.value(), w.balance.value());
        let (charges, spent) = per_user.get(&w.user).copied().unwrap_or_default();
        if charged != charges || charged - balance != spent {
            violations.push(format!(
                "wallet of {}: charged {charged} (ledger {charges}), balance {balance}, \
                 debits − refunds {spent}",
                w.user
            ));
        }
    }
    net
}

pub async fn check(audits: &Audits) -> anyhow::Result<Report> {
    let mut violations = Vec::new();
    let seat_svc::audit::SeatAudit { seats, holds } = seat_svc::audit::read(&audits.seat).await?;
    let holds: HashMap<ReservationId, HoldRow> =
        holds.into_iter().map(|h| (h.reservation, h)).collect();
    seats_held_once(&seats, &holds, &mut violations);
    let payments = payment_svc::audit::read(&audits.payment).await?;
    let net = points_conserved(payments, &mut violations);

    // 3. Every saga is terminal and all services agree on how it ended.
    let reservations = reservation_svc::audit::reservations(&audits.reservation).await?;
    let mut report = Report::default();
    let mut known = HashSet::new();
    for r in &reservations {
        known.insert(r.id);
        *report.outcomes.entry(r.status.to_string()).or_default() += 1;
        if !r.status.is_terminal() {
            report.unfinished += 1;
            continue;
        }
        let charged = net.get(&r.id).copied().unwrap_or(0);
        let hold = holds.get(&r.id);
        let sold = hold.is_some_and(|h| h.status == HoldStatus::Sold);
        let confirmed = r.status == Status::Confirmed;
        let price = r.amount.value();
        if confirmed != sold || (confirmed && charged != price) || (!confirmed && charged != 0) {
            violations.push(format!(
                "reservation {} is {} but its hold is {:?} and its net charge {charged} (price {price})",
                r.id,
                r.status,
                hold.map(|h| h.status)
            ));
        }
        if let Some(h) = hold.filter(|h| h.amount != r.amount) {
            violations.push(format!(
                "reservation {}: price {price} but the hold says {}",
                r.id, h.amount
            ));
        }
    }
    for id in holds.keys().filter(|id| !known.contains(*id)) {
        violations.push(format!("hold {id} never became a reservation"));
    }
    for (id, charged) in net
        .iter()
        .filter(|(id, c)| !known.contains(*id) && **c != 0)
    {
        violations.push(format!(
            "{charged} points charged for unknown reservation {id}"
        ));
    }

    // 4. The availability view equals seat-svc's truth.
    let shown: HashMap<SeatId, concert_svc::view::domain::SeatStatus> =
        concert_svc::audit::view(&audits.concert)
            .await?
            .into_iter()
            .collect();
    for s in &seats {
        match shown.get(&s.id) {
            Some(v) if v.as_str() == s.status.as_str() => {}
            v => violations.push(format!(
                "view shows seat {} as {v:?}, seat-svc says {}",
                s.id, s.status
            )),
        }
    }
    // 6. Every outbox drained: nothing committed is still waiting for the broker, nothing set
    // aside.
    for (service, db) in [
        ("concert-svc", &audits.concert),
        ("seat-svc", &audits.seat),
        ("reservation-svc", &audits.reservation),
        ("payment-svc", &audits.payment),
    ] {
        let (pending, parked) =
            nats::unit_of_work::outbox::backlog(&mut db.reader().await?).await?;
        report.unpublished += pending;
        if parked > 0 {
            violations.push(format!("{service} set {parked} outbox rows aside"));
        }
    }
    report.violations = violations;
    Ok(report)
}

/// Points a user was charged, per the wallets.
pub async fn charged(audits: &Audits) -> anyhow::Result<HashMap<UserId, Points>> {
    Ok(payment_svc::audit::read(&audits.payment)
        .await?
        .wallets
        .into_iter()
        .map(|w| (w.user, w.charged))
        .collect())
}
