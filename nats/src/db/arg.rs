//! arg: a value bound to a placeholder, as both drivers take it; the Rust types that bind as
//! one ([`ToArg`]); and a statement's text and values as sqlx's PostgreSQL driver takes them.

use contracts::{ConcertId, Points, ReservationId, ScheduleId, SeatId, UserId};

/// One value bound to a placeholder.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Int(i64),
    Text(String),
    NullInt,
    NullText,
}

/// A Rust value that can be bound to a placeholder.
pub trait ToArg {
    fn to_arg(&self) -> Arg;
    /// How `None` of this type is bound.
    fn null() -> Arg
    where
        Self: Sized,
    {
        Arg::NullText
    }
}

impl ToArg for i64 {
    fn to_arg(&self) -> Arg {
        Arg::Int(*self)
    }
    fn null() -> Arg {
        Arg::NullInt
    }
}

impl ToArg for bool {
    fn to_arg(&self) -> Arg {
        Arg::Int(i64::from(*self))
    }
    fn null() -> Arg {
        Arg::NullInt
    }
}

impl ToArg for Points {
    fn to_arg(&self) -> Arg {
        Arg::Int(self.value())
    }
    fn null() -> Arg {
        Arg::NullInt
    }
}

impl ToArg for str {
    fn to_arg(&self) -> Arg {
        Arg::Text(self.to_owned())
    }
}

impl ToArg for String {
    fn to_arg(&self) -> Arg {
        Arg::Text(self.clone())
    }
}

impl ToArg for UserId {
    fn to_arg(&self) -> Arg {
        Arg::Text(self.0.clone())
    }
}

/// Ids and words are stored as their text.
macro_rules! text_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> Arg {
                Arg::Text(self.to_string())
            }
        }
    )*};
}
text_args!(
    ConcertId,
    ScheduleId,
    SeatId,
    ReservationId,
    contracts::ReleaseReason,
    contracts::SaleRejection,
    contracts::PaymentFailure,
    uuid::Uuid
);

impl<T: ToArg> ToArg for Option<T> {
    fn to_arg(&self) -> Arg {
        match self {
            Some(v) => v.to_arg(),
            None => T::null(),
        }
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> Arg {
        (**self).to_arg()
    }
}

pub(super) fn failed(text: &str) -> String {
    let first = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = first.chars().take(80).collect();
    format!("SQL `{short}`")
}

pub(super) fn query(
    text: &str,
    args: Vec<Arg>,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    // Only our stores' fixed text and numbered placeholders reach here (see `Sql::sql_built`);
    // every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
    for arg in args {
        q = match arg {
            Arg::Int(i) => q.bind(i),
            Arg::Text(s) => q.bind(s),
            Arg::NullInt => q.bind(None::<i64>),
            Arg::NullText => q.bind(None::<String>),
        };
    }
    q
}
