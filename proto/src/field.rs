//! Why a request field is refused, as a value: every rule in this crate
//! returns a [`FieldError`] (the field's path and the problem), and each
//! server turns it into `INVALID_ARGUMENT` in its one error map. Also
//! [`quote`], the one way an error message shows client input: cut short,
//! so an error about a huge field never grows the reply past what a client
//! accepts.

use std::fmt;

/// Most bytes of client input an error message shows.
pub const QUOTE_BYTES: usize = 64;

/// A field that breaks a rule: `field` is its path (`topic`,
/// `messages[3].payload`), `problem` says what is wrong and names the limit.
/// Displays as `field: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same refusal about message `index` of a batch:
    /// `payload` becomes `messages[3].payload`.
    pub fn in_message(self, index: usize) -> Self {
        Self {
            field: format!("{}.{}", crate::batch::message_field(index), self.field),
            problem: self.problem,
        }
    }
}

/// Client input as an error message may show it: at most [`QUOTE_BYTES`]
/// bytes, cut on a character boundary, with `…` when something was cut.
pub fn quote(input: &str) -> Quoted<'_> {
    let mut end = input.len().min(QUOTE_BYTES);
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    Quoted {
        shown: &input[..end],
        cut: end < input.len(),
    }
}

/// See [`quote`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    shown: &'a str,
    cut: bool,
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown)?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_field_then_problem() {
        let err = FieldError::new("payload", "too big");
        assert_eq!(err.to_string(), "payload: too big");
        assert_eq!(
            err.in_message(3).to_string(),
            "messages[3].payload: too big"
        );
    }

    #[test]
    fn short_input_is_shown_whole() {
        assert_eq!(quote("").to_string(), "");
        assert_eq!(quote("orders.eu").to_string(), "orders.eu");
        let exact = "x".repeat(QUOTE_BYTES);
        assert_eq!(quote(&exact).to_string(), exact);
    }

    #[test]
    fn long_input_is_cut_on_a_char_boundary() {
        let long = "y".repeat(60_000);
        assert_eq!(quote(&long).to_string(), format!("{}…", "y".repeat(64)));
        // 63 ASCII bytes, then a 4-byte character straddling the bound.
        let straddle = format!("{}🔑🔑", "a".repeat(63));
        assert_eq!(quote(&straddle).to_string(), format!("{}…", "a".repeat(63)));
    }
}
