//! Connecting: a malformed address or one where nothing listens fails with
//! `Error::Connect` naming the address, before any call.

use prism_client::{Error, PrismClient};

#[tokio::test]
async fn nothing_listening_is_a_connect_error_naming_the_address() {
    // A port that was free a moment ago: bound, read, released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let error = PrismClient::connect(address.clone()).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&address), "{error}");
    assert_eq!(error.code(), None);
    assert_eq!(error.trace_id(), None);
}

#[tokio::test]
async fn a_malformed_address_is_a_connect_error() {
    let error = PrismClient::connect("not an address").await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains("not an address"), "{error}");
}
