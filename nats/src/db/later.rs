//! later: writes a unit of work sends later ([`super::Statement::execute_later`]). On
//! PostgreSQL each statement is a round trip; writes whose outcome the unit does not read wait
//! and go as one statement: with the unit's next write, before its next read, or at its end.

use super::arg::{Arg, failed, query};
use anyhow::Context as _;
use sqlx::AnyConnection;
use std::borrow::Cow;

/// A write waiting to be sent with others (see [`super::Statement::execute_later`]).
pub(crate) struct Later {
    pub(super) text: Cow<'static, str>,
    pub(super) args: Vec<Arg>,
}

/// Sends the writes waiting in `later`, if any, in one statement, before anything else runs.
pub(crate) async fn flush(
    conn: &mut AnyConnection,
    later: Option<&mut Vec<Later>>,
) -> anyhow::Result<()> {
    let Some(later) = later.filter(|later| !later.is_empty()) else {
        return Ok(());
    };
    let (text, args) = merged(std::mem::take(later));
    query(&text, args)
        .execute(conn)
        .await
        .with_context(|| failed(&text))?;
    Ok(())
}

/// What to send for the statement `text`: a write goes with the writes waiting, as the last
/// part of one statement (it does not see their changes); anything else after them, which are
/// sent first.
pub(crate) async fn with_waiting(
    conn: &mut AnyConnection,
    later: Option<&mut Vec<Later>>,
    text: Cow<'static, str>,
    args: Vec<Arg>,
) -> anyhow::Result<(Cow<'static, str>, Vec<Arg>)> {
    match later {
        Some(later) if !later.is_empty() && is_write(&text) => {
            let mut writes = std::mem::take(later);
            writes.push(Later { text, args });
            Ok(merged(writes))
        }
        later => {
            flush(conn, later).await?;
            Ok((text, args))
        }
    }
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
        let (text, _) = merged(vec![write("UPDATE a SET x = $1", &[1])]);
        assert_eq!(text, "UPDATE a SET x = $1");
    }
}
