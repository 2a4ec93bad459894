//! invariants: the checker every end-to-end and fault run finishes with. It reads the four
//! services' databases and verifies invariants 1–4 of the design: no seat sold or held twice,
//! points conserved, every saga terminal with all services agreeing, and the availability view
//! equal to seat-svc's truth.

use platform::db::Db;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// Where each service keeps its state.
#[derive(Clone, Debug)]
pub struct Databases {
    pub concert: String,
    pub seat: String,
    pub reservation: String,
    pub payment: String,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Reservations by status at reservation-svc.
    pub outcomes: BTreeMap<String, usize>,
    /// Sagas not yet in a terminal status.
    pub unfinished: usize,
    pub violations: Vec<String>,
}

impl Report {
    pub fn sagas(&self) -> usize {
        self.outcomes.values().sum()
    }

    pub fn is_clean(&self) -> bool {
        self.unfinished == 0 && self.violations.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} sagas {:?}", self.sagas(), self.outcomes)?;
        if self.unfinished > 0 {
            write!(f, ", {} unfinished", self.unfinished)?;
        }
        write!(f, ", {} violations", self.violations.len())?;
        for v in self.violations.iter().take(20) {
            write!(f, "\n  - {v}")?;
        }
        Ok(())
    }
}

struct Seat {
    status: String,
    reservation: Option<String>,
}

struct Hold {
    status: String,
    amount: i64,
    seats: Vec<String>,
}

pub async fn check(dbs: &Databases) -> anyhow::Result<Report> {
    let (concert, seat, reservation, payment) = (
        Db::connect(&dbs.concert).await?,
        Db::connect(&dbs.seat).await?,
        Db::connect(&dbs.reservation).await?,
        Db::connect(&dbs.payment).await?,
    );
    let mut r = Report::default();
    let mut violations = Vec::new();

    // seat-svc's truth.
    let seats: HashMap<String, Seat> = sqlx::query("SELECT id, status, reservation_id FROM seats")
        .fetch_all(seat.pool())
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                Seat {
                    status: row.try_get("status")?,
                    reservation: row.try_get("reservation_id")?,
                },
            ))
        })
        .collect::<sqlx::Result<_>>()?;
    let mut holds: HashMap<String, Hold> =
        sqlx::query("SELECT reservation_id, status, amount FROM holds")
            .fetch_all(seat.pool())
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("reservation_id")?,
                    Hold {
                        status: row.try_get("status")?,
                        amount: row.try_get("amount")?,
                        seats: Vec::new(),
                    },
                ))
            })
            .collect::<sqlx::Result<_>>()?;
    for row in sqlx::query("SELECT reservation_id, seat_id FROM hold_seats")
        .fetch_all(seat.pool())
        .await?
    {
        let r: String = row.try_get("reservation_id")?;
        if let Some(h) = holds.get_mut(&r) {
            h.seats.push(row.try_get("seat_id")?);
        }
    }

    // 1. No seat is sold to, or live-held by, two reservations; seats and holds agree.
    let mut owners: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, h) in &holds {
        if h.status == "held" || h.status == "sold" {
            for s in &h.seats {
                owners.entry(s).or_default().push(id);
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
    for (id, s) in &seats {
        let owner = owners.get(id.as_str()).and_then(|w| w.first()).copied();
        match (s.status.as_str(), &s.reservation, owner) {
            ("available", None, None) => {}
            (st @ ("held" | "sold"), Some(res), Some(o)) if res == o && holds[o].status == st => {}
            (st, res, o) => violations.push(format!(
                "seat {id} is {st} for {res:?} but the holds say {o:?}"
            )),
        }
    }

    // 2. Points are conserved, per user and per reservation.
    let mut net: HashMap<String, i64> = HashMap::new();
    let mut per_user: HashMap<String, (i64, i64)> = HashMap::new(); // (charges, debits − refunds)
    for row in sqlx::query("SELECT user_id, kind, amount, reservation_id FROM ledger")
        .fetch_all(payment.pool())
        .await?
    {
        let (user, kind, amount): (String, String, i64) = (
            row.try_get("user_id")?,
            row.try_get("kind")?,
            row.try_get("amount")?,
        );
        let res: Option<String> = row.try_get("reservation_id")?;
        let sign = match kind.as_str() {
            "charge" => {
                per_user.entry(user).or_default().0 += amount;
                continue;
            }
            "debit" => 1,
            "refund" => -1,
            other => {
                violations.push(format!("ledger entry of unknown kind {other}"));
                continue;
            }
        };
        per_user.entry(user).or_default().1 += sign * amount;
        *net.entry(res.unwrap_or_default()).or_default() += sign * amount;
    }
    for row in sqlx::query("SELECT user_id, balance, charged_total FROM wallets")
        .fetch_all(payment.pool())
        .await?
    {
        let (user, balance, charged): (String, i64, i64) = (
            row.try_get("user_id")?,
            row.try_get("balance")?,
            row.try_get("charged_total")?,
        );
        let (charges, spent) = per_user.get(&user).copied().unwrap_or_default();
        if charged != charges || charged - balance != spent || balance < 0 {
            violations.push(format!(
                "wallet of {user}: charged {charged} (ledger {charges}), balance {balance}, \
                 debits − refunds {spent}"
            ));
        }
    }

    // 3. Every saga is terminal and all services agree on how it ended.
    let reservations = sqlx::query("SELECT id, status, amount FROM reservations")
        .fetch_all(reservation.pool())
        .await?;
    let mut known = std::collections::HashSet::new();
    for row in &reservations {
        let (id, status, amount): (String, String, i64) = (
            row.try_get("id")?,
            row.try_get("status")?,
            row.try_get("amount")?,
        );
        known.insert(id.clone());
        let charged = net.get(&id).copied().unwrap_or(0);
        let hold = holds.get(&id);
        if matches!(status.as_str(), "awaiting_payment" | "payment_pending") {
            continue;
        }
        let sold = hold.is_some_and(|h| h.status == "sold");
        let confirmed = status == "confirmed";
        if confirmed != sold || (confirmed && charged != amount) || (!confirmed && charged != 0) {
            violations.push(format!(
                "reservation {id} is {status} but its hold is {:?} and its net charge {charged} (price {amount})",
                hold.map(|h| h.status.as_str())
            ));
        }
        if hold.is_some_and(|h| h.amount != amount) {
            violations.push(format!(
                "reservation {id}: price {amount} but the hold says {}",
                hold.unwrap().amount
            ));
        }
    }
    for id in holds.keys() {
        if !known.contains(id) {
            violations.push(format!("hold {id} never became a reservation"));
        }
    }
    for (id, charged) in &net {
        if !known.contains(id) && *charged != 0 {
            violations.push(format!(
                "{charged} points charged for unknown reservation {id:?}"
            ));
        }
    }

    // 4. The availability view equals seat-svc's truth.
    let view: HashMap<String, String> = sqlx::query("SELECT seat_id, status FROM seat_view")
        .fetch_all(concert.pool())
        .await?
        .iter()
        .map(|row| Ok((row.try_get("seat_id")?, row.try_get("status")?)))
        .collect::<sqlx::Result<_>>()?;
    for (id, s) in &seats {
        match view.get(id) {
            Some(shown) if *shown == s.status => {}
            shown => violations.push(format!(
                "view shows seat {id} as {shown:?}, seat-svc says {}",
                s.status
            )),
        }
    }
    r.violations = violations;

    for row in &reservations {
        let status: String = row.try_get("status")?;
        if matches!(status.as_str(), "awaiting_payment" | "payment_pending") {
            r.unfinished += 1;
        }
        *r.outcomes.entry(status).or_default() += 1;
    }
    Ok(r)
}
