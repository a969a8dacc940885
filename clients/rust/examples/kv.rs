//! Set, get and scan through a proxy: `cargo run -p prism-client --example kv -- 127.0.0.1:8980`.
use futures_util::TryStreamExt;
use prism_client::PrismClient;

#[tokio::main]
async fn main() -> Result<(), prism_client::Error> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8980".into());
    let kv = PrismClient::connect(address).await?.kv("default");
    kv.set("greeting", "hello", None).await?;
    let value = kv.get("greeting").await?;
    println!("greeting = {}", String::from_utf8_lossy(&value));
    let keys: Vec<String> = kv.scan("greet").try_collect().await?;
    println!("keys under greet: {keys:?}");
    Ok(())
}
