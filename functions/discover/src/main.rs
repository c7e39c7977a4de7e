use discover::{Discoverer, handle, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let discoverer = Discoverer::from_env(aws::sdk_config().await)?;
    edge::run_with_http(
        |request| route(&discoverer, request),
        |event| handle(&discoverer, event),
    )
    .await
}
