//! Register devices, multicast to the floor-1 sensors, read an inbox:
//! `cargo run -p prism-client --example registry -- 127.0.0.1:8980 devices`.
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use prism_client::{Filter, PrismClient};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), prism_client::Error> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:8980".into());
    let namespace = args.next().unwrap_or_else(|| "devices".into());
    let devices = PrismClient::connect(address).await?.registry(namespace);
    let ttl = Some(Duration::from_secs(60));
    devices
        .register("sensor-1", json!({"type": "sensor", "floor": 1}), ttl)
        .await?;
    devices
        .register("sensor-2", json!({"type": "sensor", "floor": 2}), ttl)
        .await?;
    devices
        .register("actuator-1", json!({"type": "actuator", "floor": 1}), ttl)
        .await?;

    let sensors: Vec<String> = devices
        .enumerate(Filter::all().eq("type", "sensor"))
        .map_ok(|device| device.identity)
        .try_collect()
        .await?;
    println!("sensors: {sensors:?}");

    let floor_one_sensors = json!({"type": "sensor", "floor": 1});
    let report = devices
        .multicast(floor_one_sensors, r#"{"command":"read"}"#)
        .await?;
    println!(
        "target {} delivered {} pending {} failed {}",
        report.target, report.delivered, report.pending, report.failed
    );
    for delivery in &report.results {
        println!("  {}: {:?}", delivery.identity, delivery.status);
    }
    // sensor-1 had no receiver: the message waits in its inbox.
    let mut inbox = devices.receive("sensor-1").await?;
    if let Some(message) = inbox.next().await {
        println!(
            "sensor-1 got {}",
            String::from_utf8_lossy(&message?.payload)
        );
    }
    Ok(())
}
