//! [`Secret`]: a token or credential that never shows itself. Its `Debug`
//! and `Display` print `<redacted>`, so a secret inside any struct stays out
//! of logs and error messages; the value comes out only through
//! [`Secret::expose`], where it is sent.

use std::fmt;

#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: for a header, a form field or the token cache.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let secret = Secret::new("eyJhbGciOi.payload.sig");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "eyJhbGciOi.payload.sig");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"eyJhbGciOi.payload.sig\"");
    }
}
