//! Rules of `prism.pubsub.v1.PubSub/PublishBatch`, shared by the proxy and
//! every PubSub pattern so a client sees one error text wherever a batch is
//! refused: how many messages a batch may hold, and how a refusal names the
//! message it is about (`messages[3].payload: …`).

use crate::field::FieldError;

/// Most messages one PublishBatch may hold.
pub const MAX_MESSAGES: usize = 1000;

/// Why a batch of `len` messages is refused, if it is: it is empty or holds
/// more than [`MAX_MESSAGES`]. The reason goes after the field `messages`.
pub fn size_problem(len: usize) -> Option<String> {
    match len {
        0 => Some("must hold at least one message".into()),
        n if n > MAX_MESSAGES => Some(format!(
            "{n} messages exceeds the limit of {MAX_MESSAGES} messages"
        )),
        _ => None,
    }
}

/// Refuses (naming `messages`) a batch of `len` messages unless allowed.
pub fn check_size(len: usize) -> Result<(), FieldError> {
    match size_problem(len) {
        Some(reason) => Err(FieldError::new("messages", reason)),
        None => Ok(()),
    }
}

/// The field path of message `index` in a batch: `messages[3]`.
pub fn message_field(index: usize) -> String {
    format!("messages[{index}]")
}

/// Runs `check` on each message in order and returns the first refusal,
/// its field prefixed with the message's place, so `payload: …` becomes
/// `messages[3].payload: …`.
pub fn check_each<T>(
    messages: &[T],
    mut check: impl FnMut(&T) -> Result<(), FieldError>,
) -> Result<(), FieldError> {
    for (index, message) in messages.iter().enumerate() {
        check(message).map_err(|err| err.in_message(index))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_one_to_the_limit_of_messages() {
        assert!(check_size(1).is_ok());
        assert!(check_size(MAX_MESSAGES).is_ok());
        for len in [0, MAX_MESSAGES + 1] {
            let err = check_size(len).unwrap_err();
            assert_eq!(err.field, "messages");
        }
        let err = check_size(1001).unwrap_err();
        assert_eq!(
            err.to_string(),
            "messages: 1001 messages exceeds the limit of 1000 messages"
        );
    }

    #[test]
    fn a_refusal_names_the_first_bad_message() {
        let mut checked = Vec::new();
        let err = check_each(&[1, 2, -3, -4], |n| {
            checked.push(*n);
            if *n < 0 {
                Err(FieldError::new("payload", "negative"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.field, "messages[2].payload");
        assert_eq!(err.to_string(), "messages[2].payload: negative");
        assert_eq!(checked, [1, 2, -3], "stops at the first refusal");
        assert!(check_each(&[1, 2], |_| Ok(())).is_ok());
    }
}
