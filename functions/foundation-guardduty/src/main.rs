use foundation_guardduty::{Bootstrap, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let sdk = aws::sdk_config().await;
    let regions = aws::regions::governed(&sdk).await?;
    let bootstrap = Bootstrap::from_env(sdk, regions)?;
    edge::run(|input| handle(&bootstrap, input)).await
}
