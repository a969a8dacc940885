//! Connecting: a malformed address or one where nothing listens fails with
//! `Error::Connect` naming the address, before any call.

use prism_client::{Error, PrismClient};

#[tokio::test]
async fn nothing_listening_is_a_connect_error_naming_the_address() {
    // A port bound but never listened on: refused, and no other process
    // can take it while the socket lives.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = closed.local_addr().unwrap().to_string();
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
