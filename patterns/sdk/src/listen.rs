//! Listen addresses: a Unix socket path or a TCP socket address.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl ListenAddr {
    /// Parses `unix:/path` or `HOST:PORT` (an IP address, not a name).
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        SocketAddr::from_str(s)
            .map(Self::Tcp)
            .map_err(|_| format!("`{s}` is neither unix:PATH nor IP:PORT"))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            ListenAddr::parse("unix:/run/p.sock").unwrap(),
            ListenAddr::Unix("/run/p.sock".into())
        );
        assert_eq!(
            ListenAddr::parse("[::1]:80").unwrap(),
            ListenAddr::Tcp("[::1]:80".parse().unwrap())
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(ListenAddr::parse("unix:").is_err());
        assert!(ListenAddr::parse("localhost").is_err());
    }
}
