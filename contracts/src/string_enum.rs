//! string_enum: enums that travel as words (statuses, reasons). Each variant has exactly one
//! spelling, given once; JSON, SQL and logs all use it, so a word cannot drift between them.

/// Why a word is not one of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{word:?} is not a known {what}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

/// Declares an enum whose variants are spelled as given: `as_str`, `FromStr`, `Display` and
/// serde all use that one spelling.
///
/// ```
/// contracts::string_enum! {
///     /// Where a hold stands.
///     pub enum HoldStatus { Held = "held", Sold = "sold" }
/// }
/// assert_eq!(HoldStatus::Held.as_str(), "held");
/// assert_eq!("sold".parse::<HoldStatus>(), Ok(HoldStatus::Sold));
/// ```
/// For the macro's OpenAPI and JSON schemas, in crates that do not name these crates themselves.
#[doc(hidden)]
pub use schemars as __schemars;
#[doc(hidden)]
pub use utoipa as __utoipa;

#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),*
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::string_enum::UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)*
                    _ => Err($crate::string_enum::UnknownWord {
                        what: stringify!($name),
                        word: s.to_owned(),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                word.parse().map_err(::serde::de::Error::custom)
            }
        }

        impl $crate::string_enum::__utoipa::PartialSchema for $name {
            fn schema() -> $crate::string_enum::__utoipa::openapi::RefOr<$crate::string_enum::__utoipa::openapi::Schema> {
                $crate::string_enum::__utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type($crate::string_enum::__utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($word),*]))
                    .into()
            }
        }

        impl $crate::string_enum::__utoipa::ToSchema for $name {}

        impl $crate::string_enum::__schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(
                _: &mut $crate::string_enum::__schemars::SchemaGenerator,
            ) -> $crate::string_enum::__schemars::Schema {
                $crate::string_enum::__schemars::json_schema!({
                    "type": "string",
                    "enum": [$($word),*],
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    string_enum! {
        enum Colour { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn one_spelling_serves_text_and_json() {
        assert_eq!(Colour::DarkBlue.as_str(), "dark_blue");
        assert_eq!(Colour::DarkBlue.to_string(), "dark_blue");
        assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark_blue\""
        );
        assert_eq!(
            serde_json::from_str::<Colour>("\"red\"").unwrap(),
            Colour::Red
        );
        let err = "green".parse::<Colour>().unwrap_err();
        assert_eq!(err.to_string(), "\"green\" is not a known Colour");
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
        assert_eq!(Colour::ALL.len(), 2);
    }
}
