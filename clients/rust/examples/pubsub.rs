//! Subscribe, publish, receive through a proxy:
//! `cargo run -p prism-client --example pubsub -- 127.0.0.1:8980 events`.
use futures_util::StreamExt;
use prism_client::PrismClient;

#[tokio::main]
async fn main() -> Result<(), prism_client::Error> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:8980".into());
    let namespace = args.next().unwrap_or_else(|| "events".into());
    let events = PrismClient::connect(address).await?.pubsub(namespace);
    let mut orders = events.subscribe("orders.*").await?;
    // Publish until the subscription sees the first one: on some backends
    // a subscription starts a moment after its stream opens.
    let first = loop {
        events.publish("orders.created", "order 1").await?;
        let wait = std::time::Duration::from_millis(500);
        if let Ok(Some(message)) = tokio::time::timeout(wait, orders.next()).await {
            break message?;
        }
    };
    println!(
        "{} {}",
        first.topic,
        String::from_utf8_lossy(&first.payload)
    );
    events.publish("orders.paid", "order 1").await?;
    while let Some(message) = orders.next().await {
        let message = message?;
        println!(
            "{} {}",
            message.topic,
            String::from_utf8_lossy(&message.payload)
        );
        if message.topic == "orders.paid" {
            break;
        }
    }
    Ok(())
}
