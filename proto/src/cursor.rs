//! The part of a `Scan` cursor every KeyValue backend shares: a key, in
//! hex, so a cursor is plain ASCII whatever the key holds and anything a
//! server did not issue is told apart from a cursor it did. Each backend
//! frames it as it needs (MemStore: the key alone; Redis: after its own
//! position fields).

use crate::field::FieldError;

/// The refusal of a cursor this server did not issue.
pub fn invalid() -> FieldError {
    FieldError::new("cursor", "not a cursor this server issued")
}

/// `key` as cursor text.
pub fn encode_key(key: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(key.len() * 2);
    for b in key.bytes() {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// The key in cursor text made by [`encode_key`]: lower-case hex of UTF-8
/// within `max_key_bytes`, or [`invalid`].
pub fn decode_key(text: &str, max_key_bytes: usize) -> Result<String, FieldError> {
    if !text.len().is_multiple_of(2) || text.len() / 2 > max_key_bytes {
        return Err(invalid());
    }
    let bytes = text
        .as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for key in ["", "a", "user:1", "ключ:🔑 with:colons", "\u{0}\n"] {
            assert_eq!(decode_key(&encode_key(key), 4096).unwrap(), key);
        }
        assert_eq!(encode_key("a:"), "613a");
    }

    #[test]
    fn anything_else_is_invalid() {
        for text in ["6", "zz", "6G", "FF", "ff", "c3", "6161616161"] {
            let err = decode_key(text, 4).unwrap_err();
            assert_eq!(err.to_string(), "cursor: not a cursor this server issued");
        }
        assert_eq!(decode_key("61616161", 4).unwrap(), "aaaa");
    }
}
