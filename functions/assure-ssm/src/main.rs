use assure_ssm::{Assurer, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let sdk = aws::sdk_config().await;
    let regions = aws::regions::governed(&sdk).await?;
    let assurer = Assurer::from_env(sdk, regions)?;
    edge::run(|input| handle(&assurer, input)).await
}
