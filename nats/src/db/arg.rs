//! arg: a value bound to a placeholder, as both drivers take it.

/// One value bound to a placeholder.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Int(i64),
    Text(String),
    NullInt,
    NullText,
}
