//! Reading a request straight from its protobuf encoding, for the proxy,
//! which forwards the bytes it received instead of decoding and re-encoding
//! every call: [`Fields`] walks a message's fields without copying or
//! allocating, and [`requests`] picks out what each call's rules need (a key,
//! a value's length, a topic, metadata) and runs those rules.
//!
//! A message this reader refuses is one prost refuses too, for the fields the
//! rules read and the wire types of every field Prism defines (a property
//! test holds the two to that); a field it skips unread is checked by the
//! pattern's decoder, which answers the same `INVALID_ARGUMENT`.

pub mod requests;

use crate::field::FieldError;

/// Deepest nesting of groups skipped, as prost allows.
const MAX_GROUP_DEPTH: u32 = 100;

/// Why a request is refused: its bytes are not a valid encoding, or a field
/// breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request could not be decoded: {0}")]
    Undecodable(String),
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// One field's value as encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    /// A group (wire types 3 and 4), skipped whole; no Prism message has one.
    Group,
}

/// One field: its number and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
}

/// The fields of one encoded message, in order (repeated fields appear once
/// per element, as encoded).
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn varint(&mut self) -> Result<u64, Refusal> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                // The tenth byte may only carry the top bit.
                if i == 9 && byte > 1 {
                    break;
                }
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(
            if self.buf.len() < 10 && self.buf.iter().all(|b| *b >= 0x80) {
                undecodable("buffer underflow")
            } else {
                undecodable("invalid varint")
            },
        )
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Refusal> {
        if len > self.buf.len() {
            return Err(undecodable("buffer underflow"));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Refusal> {
        let mut bytes = [0; N];
        bytes.copy_from_slice(self.take(N)?);
        Ok(bytes)
    }

    fn key(&mut self) -> Result<(u32, u64), Refusal> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(undecodable(format!("invalid key value: {key}")));
        }
        let number = (key >> 3) as u32;
        if number == 0 {
            return Err(undecodable("invalid field number: 0"));
        }
        Ok((number, key & 7))
    }

    /// Skips a group whose start tag named `number`, through its end tag.
    fn skip_group(&mut self, number: u32) -> Result<(), Refusal> {
        let mut open = vec![number];
        while let Some(&current) = open.last() {
            if open.len() as u32 > MAX_GROUP_DEPTH {
                return Err(undecodable("recursion limit reached"));
            }
            if self.buf.is_empty() {
                return Err(undecodable("buffer underflow"));
            }
            let (inner, wire_type) = self.key()?;
            match wire_type {
                0 => drop(self.varint()?),
                1 => drop(self.take(8)?),
                2 => {
                    let len = self.len()?;
                    self.take(len)?;
                }
                3 => open.push(inner),
                4 if inner == current => drop(open.pop()),
                4 => return Err(undecodable("unexpected end group tag")),
                5 => drop(self.take(4)?),
                other => return Err(undecodable(format!("invalid wire type value: {other}"))),
            }
        }
        Ok(())
    }

    fn len(&mut self) -> Result<usize, Refusal> {
        let len = self.varint()?;
        usize::try_from(len).map_err(|_| undecodable("buffer underflow"))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Refusal>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let field = (|| {
            let (number, wire_type) = self.key()?;
            let value = match wire_type {
                0 => Value::Varint(self.varint()?),
                1 => Value::Fixed64(u64::from_le_bytes(self.fixed()?)),
                2 => {
                    let len = self.len()?;
                    Value::Bytes(self.take(len)?)
                }
                3 => {
                    self.skip_group(number)?;
                    Value::Group
                }
                4 => return Err(undecodable("unexpected end group tag")),
                5 => Value::Fixed32(u32::from_le_bytes(self.fixed()?)),
                other => return Err(undecodable(format!("invalid wire type value: {other}"))),
            };
            Ok(Field { number, value })
        })();
        if field.is_err() {
            // Nothing after a broken field can be read.
            self.buf = &[];
        }
        Some(field)
    }
}

impl<'a> Field<'a> {
    /// A `string` field: length-delimited UTF-8. `name` is the field's name in
    /// the `.proto`, for the refusal.
    pub fn string(&self, name: &str) -> Result<&'a str, Refusal> {
        std::str::from_utf8(self.bytes(name)?).map_err(|_| {
            undecodable(format!(
                "{name}: invalid string value: data is not UTF-8 encoded"
            ))
        })
    }

    /// A `bytes` or message field.
    pub fn bytes(&self, name: &str) -> Result<&'a [u8], Refusal> {
        match self.value {
            Value::Bytes(bytes) => Ok(bytes),
            _ => Err(self.wrong_type(name, "length-delimited")),
        }
    }

    /// A varint field (`int64`, `uint32`, `bool`…), as its raw 64 bits.
    pub fn varint(&self, name: &str) -> Result<u64, Refusal> {
        match self.value {
            Value::Varint(value) => Ok(value),
            _ => Err(self.wrong_type(name, "varint")),
        }
    }

    fn wrong_type(&self, name: &str, expected: &str) -> Refusal {
        let found = match self.value {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "64-bit",
            Value::Bytes(_) => "length-delimited",
            Value::Fixed32(_) => "32-bit",
            Value::Group => "group",
        };
        undecodable(format!(
            "{name}: invalid wire type: {found} (expected {expected})"
        ))
    }
}

fn undecodable(problem: impl Into<String>) -> Refusal {
    Refusal::Undecodable(problem.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, Refusal> {
        Fields::new(buf).collect()
    }

    #[test]
    fn reads_each_wire_type() {
        let buf = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x12, 0x02, b'h', b'i', // 2: "hi"
            0x19, 1, 0, 0, 0, 0, 0, 0, 0, // 3: fixed64 1
            0x25, 2, 0, 0, 0, // 4: fixed32 2
            0x2b, 0x08, 0x01, 0x2c, // 5: a group holding 1: varint 1
        ];
        let got = fields(&buf).unwrap();
        let values: Vec<_> = got.iter().map(|f| (f.number, f.value)).collect();
        assert_eq!(
            values,
            [
                (1, Value::Varint(150)),
                (2, Value::Bytes(b"hi")),
                (3, Value::Fixed64(1)),
                (4, Value::Fixed32(2)),
                (5, Value::Group),
            ]
        );
    }

    #[test]
    fn refuses_broken_encodings() {
        for (what, buf) in [
            ("a length past the end", &[0x0a, 0x64, b'k'][..]),
            ("a truncated varint", &[0x08, 0x80]),
            ("field number 0", &[0x00, 0x01]),
            ("wire type 6", &[0x0e]),
            ("an end group with no start", &[0x0c]),
            ("an unterminated group", &[0x0b, 0x08, 0x01]),
            (
                "an eleven-byte varint",
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
            ),
        ] {
            assert!(
                matches!(fields(buf), Err(Refusal::Undecodable(_))),
                "{what}: {:?}",
                fields(buf)
            );
        }
    }

    #[test]
    fn a_known_field_of_the_wrong_type_is_refused() {
        let field = Fields::new(&[0x08, 0x01]).next().unwrap().unwrap();
        let err = field.string("key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the request could not be decoded: key: invalid wire type: varint (expected length-delimited)"
        );
        let bad_utf8 = [0x0a, 0x01, 0xff];
        let field = Fields::new(&bad_utf8).next().unwrap().unwrap();
        assert!(
            field
                .string("key")
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
    }
}
