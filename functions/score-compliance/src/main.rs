use score_compliance::{Scorer, handle, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let sdk = aws::sdk_config().await;
    let regions = aws::regions::governed(&sdk).await?;
    let scorer = Scorer::from_env(sdk, regions)?;
    edge::run_with_http(
        |request| route(&scorer, request),
        |event| handle(&scorer, event),
    )
    .await
}
