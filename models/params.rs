//! Model parameters: their declarations, parsing and validation.
//!
//! Each model declares its parameters as a static table of [`ParamSpec`]s. A
//! user's `key=value` pairs are checked against that table: an unknown key, a
//! value of the wrong kind or out of range is a [`ParamError`] that lists what is
//! allowed.

use std::fmt;

/// What values a parameter takes.
#[derive(Clone, Copy, Debug)]
pub enum ParamKind {
    /// A whole number in `min..=max`.
    Int {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// `true` or `false`.
    Bool,
    /// One of a fixed list of names.
    Choice(&'static [&'static str]),
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamKind::Int { min, max } => write!(f, "{min}..={max}"),
            ParamKind::Bool => f.write_str("true|false"),
            ParamKind::Choice(names) => f.write_str(&names.join("|")),
        }
    }
}

/// The declaration of one parameter of a model.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// The key used on the command line (`-p name=value`).
    pub name: &'static str,
    /// The value used when the user gives none.
    pub default: &'static str,
    /// The values allowed.
    pub kind: ParamKind,
    /// One line saying what the parameter changes.
    pub help: &'static str,
}

/// A parsed parameter value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// A whole number.
    Int(u64),
    /// A flag.
    Bool(bool),
    /// One of the names of a [`ParamKind::Choice`].
    Choice(&'static str),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(n) => write!(f, "{n}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Choice(name) => f.write_str(name),
        }
    }
}

/// Why a set of parameters was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The key is not a parameter of this model.
    #[error("model `{model}` has no parameter `{key}`; its parameters are: {allowed}")]
    UnknownKey {
        /// The model.
        model: &'static str,
        /// The key given.
        key: String,
        /// The parameters it has.
        allowed: String,
    },
    /// The value is not one the parameter allows.
    #[error("`{key}={value}` is not allowed for model `{model}`: `{key}` takes {allowed}")]
    BadValue {
        /// The model.
        model: &'static str,
        /// The parameter.
        key: &'static str,
        /// The value given.
        value: String,
        /// The values it allows.
        allowed: String,
    },
    /// The argument is not of the form `key=value`.
    #[error("parameter `{0}` is not of the form key=value")]
    Malformed(String),
    /// The combination of values is not allowed.
    #[error("model `{model}`: {reason}")]
    Combination {
        /// The model.
        model: &'static str,
        /// What is wrong with the combination.
        reason: String,
    },
}

/// A full, validated set of parameter values for one model, in declaration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    model: &'static str,
    values: Vec<(&'static str, ParamValue)>,
}

impl Params {
    /// Parses `key=value` strings against `specs`; keys not given take their default.
    pub fn parse<S: AsRef<str>>(
        model: &'static str,
        specs: &'static [ParamSpec],
        pairs: &[S],
    ) -> Result<Params, ParamError> {
        let mut given = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let pair = pair.as_ref();
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ParamError::Malformed(pair.to_string()))?;
            given.push((key.trim(), value.trim()));
        }
        Params::from_pairs(model, specs, &given)
    }

    /// Like [`Params::parse`], for pairs already split.
    pub fn from_pairs(
        model: &'static str,
        specs: &'static [ParamSpec],
        given: &[(&str, &str)],
    ) -> Result<Params, ParamError> {
        for (key, _) in given {
            if !specs.iter().any(|spec| spec.name == *key) {
                return Err(ParamError::UnknownKey {
                    model,
                    key: key.to_string(),
                    allowed: describe_specs(specs),
                });
            }
        }
        let mut values = Vec::with_capacity(specs.len());
        for spec in specs {
            // The last occurrence wins, as with most command-line tools.
            let text = given
                .iter()
                .rev()
                .find(|(key, _)| *key == spec.name)
                .map_or(spec.default, |(_, value)| value);
            values.push((spec.name, parse_value(model, spec, text)?));
        }
        Ok(Params { model, values })
    }

    /// The defaults of `specs`.
    pub fn defaults(model: &'static str, specs: &'static [ParamSpec]) -> Params {
        Params::from_pairs(model, specs, &[]).expect("a model's defaults must be valid")
    }

    /// The model these parameters belong to.
    pub fn model(&self) -> &'static str {
        self.model
    }

    /// All values, in declaration order.
    pub fn values(&self) -> &[(&'static str, ParamValue)] {
        &self.values
    }

    fn get(&self, name: &str) -> &ParamValue {
        self.values
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("model `{}` declares no parameter `{name}`", self.model))
    }

    /// Whether the model declares a parameter `name`.
    pub fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(key, _)| *key == name)
    }

    /// The value of an integer parameter. Panics if the model did not declare it as one.
    pub fn int(&self, name: &str) -> u64 {
        match self.get(name) {
            ParamValue::Int(n) => *n,
            other => panic!("parameter `{name}` is {other:?}, not an integer"),
        }
    }

    /// [`Params::int`] as a `usize`.
    pub fn usize(&self, name: &str) -> usize {
        usize::try_from(self.int(name)).expect("parameter ranges fit in usize")
    }

    /// The value of a boolean parameter. Panics if the model did not declare it as one.
    pub fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            ParamValue::Bool(b) => *b,
            other => panic!("parameter `{name}` is {other:?}, not a flag"),
        }
    }

    /// The value of a choice parameter. Panics if the model did not declare it as one.
    pub fn choice(&self, name: &str) -> &'static str {
        match self.get(name) {
            ParamValue::Choice(c) => c,
            other => panic!("parameter `{name}` is {other:?}, not a choice"),
        }
    }

    /// A refusal of this combination of values.
    pub fn combination_error(&self, reason: impl Into<String>) -> ParamError {
        ParamError::Combination {
            model: self.model,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

fn describe_specs(specs: &[ParamSpec]) -> String {
    if specs.is_empty() {
        return "(none)".to_string();
    }
    specs
        .iter()
        .map(|spec| format!("{} ({})", spec.name, spec.kind))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_value(
    model: &'static str,
    spec: &ParamSpec,
    text: &str,
) -> Result<ParamValue, ParamError> {
    let bad = || ParamError::BadValue {
        model,
        key: spec.name,
        value: text.to_string(),
        allowed: spec.kind.to_string(),
    };
    match spec.kind {
        ParamKind::Int { min, max } => {
            let n: u64 = text.parse().map_err(|_| bad())?;
            if (min..=max).contains(&n) {
                Ok(ParamValue::Int(n))
            } else {
                Err(bad())
            }
        }
        ParamKind::Bool => match text {
            "true" => Ok(ParamValue::Bool(true)),
            "false" => Ok(ParamValue::Bool(false)),
            _ => Err(bad()),
        },
        ParamKind::Choice(names) => names
            .iter()
            .find(|name| **name == text)
            .map(|name| ParamValue::Choice(name))
            .ok_or_else(bad),
    }
}

/// Gives a model's `Variant` enum its names on the command line: `ALL` (every
/// variant, in declaration order), `NAMES` (theirs, in the same order, for
/// [`ParamKind::Choice`]), `name`, `from_name` and `Display`.
macro_rules! named_variants {
    ($enum:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $enum {
            /// Every variant, `Correct` first.
            pub const ALL: [$enum; [$($name),+].len()] = [$($enum::$variant),+];

            /// The variants' names on the command line, in the order of `ALL`.
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];

            /// The variant's name on the command line.
            pub fn name(self) -> &'static str {
                // By match, not by index: the enum may list its variants in
                // another order than this macro does.
                match self {
                    $($enum::$variant => $name),+
                }
            }

            /// The variant called `name`.
            pub fn from_name(name: &str) -> Option<$enum> {
                $enum::ALL.into_iter().find(|v| v.name() == name)
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use named_variants;

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec {
            name: "n",
            default: "3",
            kind: ParamKind::Int { min: 1, max: 5 },
            help: "how many",
        },
        ParamSpec {
            name: "lossy",
            default: "false",
            kind: ParamKind::Bool,
            help: "drop messages",
        },
        ParamSpec {
            name: "variant",
            default: "correct",
            kind: ParamKind::Choice(&["correct", "broken"]),
            help: "which",
        },
    ];

    #[test]
    fn defaults_fill_every_parameter() {
        let params = Params::defaults("m", SPECS);
        assert_eq!(params.int("n"), 3);
        assert!(!params.bool("lossy"));
        assert_eq!(params.choice("variant"), "correct");
        assert_eq!(params.to_string(), "n=3 lossy=false variant=correct");
    }

    #[test]
    fn given_values_override_defaults() {
        let params = Params::parse("m", SPECS, &["n=5", "variant=broken", "lossy=true"]).unwrap();
        assert_eq!(params.int("n"), 5);
        assert!(params.bool("lossy"));
        assert_eq!(params.choice("variant"), "broken");
    }

    #[test]
    fn bad_input_is_refused_with_what_is_allowed() {
        let err = Params::parse("m", SPECS, &["x=1"]).unwrap_err();
        assert!(err.to_string().contains("no parameter `x`"), "{err}");
        assert!(err.to_string().contains("n (1..=5)"), "{err}");
        let err = Params::parse("m", SPECS, &["n=9"]).unwrap_err();
        assert!(err.to_string().contains("takes 1..=5"), "{err}");
        let err = Params::parse("m", SPECS, &["n=-1"]).unwrap_err();
        assert!(matches!(err, ParamError::BadValue { .. }));
        let err = Params::parse("m", SPECS, &["lossy=yes"]).unwrap_err();
        assert!(err.to_string().contains("true|false"), "{err}");
        let err = Params::parse("m", SPECS, &["variant=nope"]).unwrap_err();
        assert!(err.to_string().contains("correct|broken"), "{err}");
        let err = Params::parse("m", SPECS, &["n"]).unwrap_err();
        assert_eq!(err, ParamError::Malformed("n".into()));
    }
}
