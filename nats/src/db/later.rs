//! later: writes a unit of work sends later ([`super::Statement::execute_later`]). On
//! PostgreSQL each statement is a round trip; writes whose outcome the unit does not read wait
//! and go as one statement: with the unit's next write, before its next read, or at its end.
//! Writes of one record ([`super::Statement::record`]) may wait past the unit's end, inside a
//! consumer's batch: they go with the next unit's statement about another record (a read of it
//! too, as the `WITH` parts before its `SELECT`), so a batch that reads and writes one record
//! per event pays about one round trip per event instead of two.

use super::arg::{Arg, failed, query};
use anyhow::Context as _;
use sqlx::AnyConnection;
use std::borrow::Cow;

/// A write waiting to be sent with others (see [`super::Statement::execute_later`]).
pub(crate) struct Later {
    pub(super) text: Cow<'static, str>,
    pub(super) args: Vec<Arg>,
    /// The one record it writes, if it said ([`super::Statement::record`]).
    pub(super) record: Option<Record>,
    /// Sent later by a unit that has ended (carried within a batch).
    carried: bool,
}

/// A record a statement reads or writes: a name for its kind (a table) and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record(pub(super) &'static str, pub(super) String);

/// The writes of a transaction waiting to be sent.
#[derive(Default)]
pub(crate) struct Waiting {
    writes: Vec<Later>,
    /// Whether the writes of a unit that ends may wait past its end (each of one record): a
    /// consumer's batch, whose units run again should a statement with another unit's writes
    /// in it fail ([`Waiting::blurred`]).
    pub(super) carry: bool,
    /// A statement carrying an ended unit's writes failed: which unit caused it is not known.
    pub(super) blurred: bool,
    /// Statements that may have changed rows, so far ([`super::Tx::changes`]).
    pub(super) changes: u64,
}

impl Waiting {
    /// Adds a write to those waiting. One of the same record that an ended unit left waiting
    /// is sent first: parts of one statement do not see each other's changes, and PostgreSQL
    /// applies only one change to a row in one statement. (A unit's own writes are its
    /// business: [`super::Statement::execute_later`].)
    pub(super) async fn push(
        &mut self,
        conn: &mut AnyConnection,
        text: Cow<'static, str>,
        args: Vec<Arg>,
        record: Option<Record>,
    ) -> anyhow::Result<()> {
        if record.as_ref().is_some_and(|r| {
            self.writes
                .iter()
                .any(|w| w.carried && w.record.as_ref() == Some(r))
        }) {
            self.flush(conn).await?;
        }
        self.writes.push(Later {
            text,
            args,
            record,
            carried: false,
        });
        Ok(())
    }

    /// The unit that sent them ended well: its writes of one record each wait on when it may
    /// carry them, and are sent now otherwise.
    pub(crate) async fn unit_ended(&mut self, conn: &mut AnyConnection) -> anyhow::Result<()> {
        if self.carry && self.writes.iter().all(|w| w.record.is_some()) {
            self.writes.iter_mut().for_each(|w| w.carried = true);
            return Ok(());
        }
        self.flush(conn).await
    }

    /// Forgets the writes of the unit running (it did not succeed); those that ended units
    /// carry stay theirs, until a rollback forgets them ([`Waiting::forget_all`]).
    pub(crate) fn forget(&mut self) {
        self.writes.retain(|w| w.carried);
    }

    /// Forgets every write waiting (their units are undone).
    pub(crate) fn forget_all(&mut self) {
        self.writes.clear();
    }

    /// Sends the writes waiting, if any, in one statement, before anything else runs.
    pub(crate) async fn flush(&mut self, conn: &mut AnyConnection) -> anyhow::Result<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let carrying = self.carrying();
        self.changes += 1;
        let (text, args) = merged(std::mem::take(&mut self.writes));
        let sent = query(&text, args).execute(conn).await;
        self.blurred |= sent.is_err() && carrying;
        sent.with_context(|| failed(&text))?;
        Ok(())
    }

    fn carrying(&self) -> bool {
        self.writes.iter().any(|w| w.carried)
    }

    /// What to send for the statement `text` (about `record`, if it said): the writes waiting
    /// go with it as `WITH` parts before it (which it does not see) when that is safe, else
    /// they are sent first. Safe: for a write, when no ended unit's write waits (the running
    /// unit's own writes are its business: [`super::Statement::execute_later`]); for any
    /// statement about one record, when every write waiting is of another record. The second
    /// value: whether an ended unit's writes went with it.
    async fn with(
        &mut self,
        conn: &mut AnyConnection,
        text: Cow<'static, str>,
        args: Vec<Arg>,
        record: Option<&Record>,
    ) -> anyhow::Result<(Cow<'static, str>, Vec<Arg>, bool)> {
        if self.writes.is_empty() {
            return Ok((text, args, false));
        }
        let apart = |r: &Record| {
            self.writes
                .iter()
                .all(|w| w.record.as_ref().is_some_and(|own| own != r))
        };
        let along = match record {
            Some(r) if apart(r) => true,
            _ => is_write(&text) && !self.carrying(),
        };
        if !along {
            self.flush(conn).await?;
            return Ok((text, args, false));
        }
        let carrying = self.carrying();
        self.changes += 1;
        let mut writes = std::mem::take(&mut self.writes);
        writes.push(Later {
            text,
            args,
            record: None,
            carried: false,
        });
        let (text, args) = merged(writes);
        Ok((text, args, carrying))
    }
}

/// Runs the statement `text` (about `record`, if it said) with `run`, on a transaction's
/// connection with the writes `waiting` that may go with it ([`Waiting::with`]); a failure of
/// a statement that carried an ended unit's writes makes the batch's outcome unclear
/// ([`Waiting::blurred`]); one that may write and whose result says it touched rows
/// (`touched`), or that failed, is counted ([`super::Tx::changes`]). On a read connection
/// (`None`) it runs alone.
pub(crate) async fn run<T>(
    conn: &mut AnyConnection,
    waiting: Option<&mut Waiting>,
    text: Cow<'static, str>,
    args: Vec<Arg>,
    record: Option<&Record>,
    run: impl AsyncFnOnce(&mut AnyConnection, &str, Vec<Arg>) -> anyhow::Result<T>,
    touched: impl FnOnce(&T) -> bool,
) -> anyhow::Result<T> {
    let Some(waiting) = waiting else {
        return run(conn, &text, args).await;
    };
    let (sent, args, carrying) = waiting.with(conn, text, args, record).await?;
    let done = run(conn, &sent, args).await;
    waiting.blurred |= done.is_err() && carrying;
    // A statement that failed aborts PostgreSQL's transaction: its unit is to be undone as one
    // that changed rows is.
    if done
        .as_ref()
        .map_or(true, |value| may_write(&sent) && touched(value))
    {
        waiting.changes += 1;
    }
    done
}

/// Whether `text` may change rows: anything but a plain `SELECT` (a `WITH` may hold writes).
/// Taken wrongly for a write, a rejected unit is only undone for nothing.
fn may_write(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    !first.eq_ignore_ascii_case("SELECT")
}

/// Whether `text` is an `INSERT`, `UPDATE` or `DELETE` (which may be a part of `WITH`).
fn is_write(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|write| first.eq_ignore_ascii_case(write))
}

/// Writes as one statement: all but the last as data-modifying `WITH` parts of the last, their
/// placeholders numbered on. PostgreSQL runs every part, whether or not the last reads it.
fn merged(mut writes: Vec<Later>) -> (Cow<'static, str>, Vec<Arg>) {
    let Some(last) = writes.pop() else {
        return (Cow::Borrowed(""), Vec::new());
    };
    if writes.is_empty() {
        return (last.text, last.args);
    }
    let mut args = Vec::new();
    let mut parts = Vec::with_capacity(writes.len());
    for (i, part) in writes.into_iter().enumerate() {
        parts.push(format!("w{i} AS ({})", renumbered(&part.text, args.len())));
        args.extend(part.args);
    }
    let text = format!(
        "WITH {} {}",
        parts.join(", "),
        renumbered(&last.text, args.len())
    );
    args.extend(last.args);
    (Cow::Owned(text), args)
}

/// `text` with each placeholder `$n` as `$(n + by)`.
fn renumbered(text: &str, by: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            n.push(d);
        }
        match n.parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&n),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Arg, Later, merged};
    use std::borrow::Cow;

    #[test]
    fn writes_sent_later_become_parts_of_one_statement_with_their_placeholders_numbered_on() {
        let write = |text: &'static str, args: &[i64]| Later {
            text: Cow::Borrowed(text),
            args: args.iter().map(|&i| Arg::Int(i)).collect(),
            record: None,
            carried: false,
        };
        let (text, args) = merged(vec![
            write("UPDATE a SET x = $1 WHERE id = $2", &[1, 2]),
            write("INSERT INTO b (x) VALUES ($1)", &[3]),
            write("DELETE FROM c WHERE id = $1 OR id = $10", &[4, 5]),
        ]);
        assert_eq!(
            text,
            "WITH w0 AS (UPDATE a SET x = $1 WHERE id = $2), \
             w1 AS (INSERT INTO b (x) VALUES ($3)) DELETE FROM c WHERE id = $4 OR id = $13"
        );
        assert_eq!(args.len(), 5);
        assert!(super::is_write("\n  update a SET x = 1") && super::is_write("INSERT INTO b"));
        assert!(!super::is_write("SELECT 1") && !super::is_write("WITH a AS (SELECT 1) SELECT 2"));
        assert!(super::may_write("WITH w0 AS (UPDATE a SET x = 1) SELECT 2"));
        assert!(super::may_write(" update a SET x = 1") && !super::may_write("\n select 1"));
        let (text, _) = merged(vec![write("UPDATE a SET x = $1", &[1])]);
        assert_eq!(text, "UPDATE a SET x = $1");
    }
}
