//! Who a caller is, once its token (or client certificate) checked out, and
//! the names a policy uses for callers: `sub:`, `group:`, `scope:`,
//! `email:`, `cert:` followed by a value, or `*` for any authenticated
//! caller.

use std::{fmt, str::FromStr, time::SystemTime};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The `sub` claim, or a client certificate's common name.
    pub subject: String,
    /// The token's issuer; `None` for a client certificate.
    pub issuer: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    /// When the token stops being accepted (its `exp` plus the leeway);
    /// `None` for a client certificate.
    pub expires_at: Option<SystemTime>,
    pub kind: PrincipalKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Token,
    Certificate,
}

impl Principal {
    /// A caller known by its verified client certificate.
    pub fn from_certificate(common_name: &str) -> Self {
        Self {
            subject: common_name.to_string(),
            issuer: None,
            email: None,
            groups: Vec::new(),
            scopes: Vec::new(),
            expires_at: None,
            kind: PrincipalKind::Certificate,
        }
    }

    /// Whether `name` names this caller.
    pub fn matches(&self, name: &PrincipalName) -> bool {
        let token = self.kind == PrincipalKind::Token;
        match name {
            PrincipalName::Any => true,
            PrincipalName::Subject(s) => token && self.subject == *s,
            PrincipalName::Email(e) => token && self.email.as_deref() == Some(e.as_str()),
            PrincipalName::Group(g) => token && self.groups.iter().any(|x| x == g),
            PrincipalName::Scope(s) => token && self.scopes.iter().any(|x| x == s),
            PrincipalName::Certificate(cn) => !token && self.subject == *cn,
        }
    }

    /// Whether any of `names` names this caller.
    pub fn matches_any(&self, names: &[PrincipalName]) -> bool {
        names.iter().any(|name| self.matches(name))
    }

    /// How logs, spans, audit events and WhoAmI name the caller.
    pub fn name(&self) -> String {
        match self.kind {
            PrincipalKind::Token => format!("sub:{}", self.subject),
            PrincipalKind::Certificate => format!("cert:{}", self.subject),
        }
    }
}

/// A name in an `access` or `admin` list of the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrincipalName {
    /// `*`: any authenticated caller.
    Any,
    Subject(String),
    Group(String),
    Scope(String),
    Email(String),
    /// `cert:<common name>` of a verified client certificate.
    Certificate(String),
}

/// Why a name in the config is not a principal name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a principal: use group:NAME, sub:NAME, scope:NAME, email:NAME, cert:COMMON-NAME or *"
)]
pub struct BadPrincipalName(pub String);

impl FromStr for PrincipalName {
    type Err = BadPrincipalName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let bad = || BadPrincipalName(text.chars().take(64).collect());
        let (kind, value) = text.split_once(':').ok_or_else(bad)?;
        if value.is_empty() || value.len() > 256 {
            return Err(bad());
        }
        let value = value.to_string();
        Ok(match kind {
            "sub" => Self::Subject(value),
            "group" => Self::Group(value),
            "scope" => Self::Scope(value),
            "email" => Self::Email(value),
            "cert" => Self::Certificate(value),
            _ => return Err(bad()),
        })
    }
}

impl fmt::Display for PrincipalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Subject(v) => write!(f, "sub:{v}"),
            Self::Group(v) => write!(f, "group:{v}"),
            Self::Scope(v) => write!(f, "scope:{v}"),
            Self::Email(v) => write!(f, "email:{v}"),
            Self::Certificate(v) => write!(f, "cert:{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Principal {
        Principal {
            subject: "alice".into(),
            issuer: Some("https://id.example".into()),
            email: Some("alice@example.com".into()),
            groups: vec!["orders-readers".into()],
            scopes: vec!["orders.read".into(), "openid".into()],
            expires_at: None,
            kind: PrincipalKind::Token,
        }
    }

    fn name(s: &str) -> PrincipalName {
        s.parse().unwrap()
    }

    #[test]
    fn names_parse_and_print_back() {
        for s in [
            "*",
            "sub:alice",
            "group:g",
            "scope:a.b",
            "email:a@b",
            "cert:svc-a",
        ] {
            assert_eq!(name(s).to_string(), s);
        }
        for bad in ["alice", "user:alice", "group:", ":x", ""] {
            let err = bad.parse::<PrincipalName>().unwrap_err();
            assert!(err.to_string().contains("group:NAME"), "{err}");
        }
    }

    #[test]
    fn a_token_caller_matches_by_subject_group_scope_and_email() {
        let a = alice();
        for yes in [
            "*",
            "sub:alice",
            "group:orders-readers",
            "scope:orders.read",
            "email:alice@example.com",
        ] {
            assert!(a.matches(&name(yes)), "{yes}");
        }
        for no in [
            "sub:bob",
            "group:orders-writers",
            "scope:orders.write",
            "email:bob@example.com",
            "cert:alice",
        ] {
            assert!(!a.matches(&name(no)), "{no}");
        }
        assert_eq!(a.name(), "sub:alice");
    }

    #[test]
    fn a_certificate_caller_matches_only_cert_names() {
        let c = Principal::from_certificate("svc-a");
        assert!(c.matches(&name("cert:svc-a")));
        assert!(c.matches(&name("*")));
        assert!(
            !c.matches(&name("sub:svc-a")),
            "a CN is not a token subject"
        );
        assert!(!c.matches(&name("cert:svc-b")));
        assert_eq!(c.name(), "cert:svc-a");
    }
}
