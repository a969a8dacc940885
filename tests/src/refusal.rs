//! What every refusal of client input must look like, whichever edge
//! refuses it: INVALID_ARGUMENT, the message naming the field first and
//! quoting the input only briefly.

use tonic::{Code, Status};

/// A refusal quoting client input stays shorter than this.
pub const SHORT: usize = 200;

/// Asserts `err` refuses field `field` (the message starts `field: `) as
/// INVALID_ARGUMENT in fewer than [`SHORT`] bytes; `what` names the case.
pub fn assert_invalid_field(err: &Status, field: &str, what: &str) {
    assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    assert!(
        err.message().starts_with(&format!("{field}: ")),
        "{what}: {}",
        err.message()
    );
    assert!(err.message().len() < SHORT, "{what}: {}", err.message());
}
