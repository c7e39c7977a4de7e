use publish_events::{Publisher, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let publisher = Publisher::from_env(&aws::sdk_config().await)?;
    edge::run(|event| handle(&publisher, event)).await
}
