//! Why the console is disconnected, in the operator's words: nothing
//! listens (refused), the address is a gRPC port that does not serve the
//! admin API (most often the proxy's data port), or the proxy refused the
//! caller (auth, with the proxy's own message).

use tonic::Code;

/// The header's text when the console reached a gRPC server that does
/// not serve `prism.admin.v1.Admin`.
pub(crate) const WRONG_PORT: &str = "wrong port: this address answers gRPC but not the admin API — the data port? (the admin port is the proxy's --admin-listen, default 127.0.0.1:8981)";

/// A failed connection attempt, from the transport's error chain.
pub(crate) fn of_connect_error(uri: &str, chain: &str) -> String {
    let lower = chain.to_ascii_lowercase();
    if lower.contains("connection refused") {
        format!("refused: nothing listens at {uri} — is the proxy running?")
    } else if lower.contains("timed out") {
        format!("timed out connecting to {uri}")
    } else if lower.contains("failed to lookup")
        || lower.contains("name or service not known")
        || lower.contains("dns error")
    {
        format!("unknown host in {uri}")
    } else {
        chain.to_string()
    }
}

/// An admin call the proxy answered with an error that ends the session.
pub(crate) fn of_status(status: &tonic::Status) -> String {
    let said = |what: &str| {
        if status.message().is_empty() {
            what.to_string()
        } else {
            format!("{what} (proxy: {})", status.message())
        }
    };
    match status.code() {
        Code::Unimplemented => WRONG_PORT.to_string(),
        Code::Unauthenticated => said(crate::model::UNAUTHENTICATED),
        Code::PermissionDenied => said("auth: permission denied — your role does not allow this"),
        _ => crate::model::RpcError::from_status(status).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Status;

    #[test]
    fn each_cause_is_named() {
        let uri = "http://127.0.0.1:1";
        assert_eq!(
            of_connect_error(
                uri,
                "transport error: tcp connect error: Connection refused (os error 111)"
            ),
            "refused: nothing listens at http://127.0.0.1:1 — is the proxy running?"
        );
        assert!(of_connect_error(uri, "transport error: timed out").starts_with("timed out"));
        assert_eq!(of_connect_error(uri, "something else"), "something else");
        assert_eq!(of_status(&Status::unimplemented("")), WRONG_PORT);
        let auth = of_status(&Status::unauthenticated("token expired at 12:00"));
        assert!(auth.starts_with(crate::model::UNAUTHENTICATED), "{auth}");
        assert!(auth.ends_with("(proxy: token expired at 12:00)"), "{auth}");
        let denied = of_status(&Status::permission_denied("sub:bob has no admin role"));
        assert!(denied.starts_with("auth: permission denied"), "{denied}");
        assert!(denied.contains("sub:bob has no admin role"), "{denied}");
        assert_eq!(
            of_status(&Status::unavailable("draining")),
            "Unavailable: draining"
        );
    }
}
