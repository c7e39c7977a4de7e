use score_compliance::{Scorer, handle, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let scorer = Scorer::from_env(aws::sdk_config().await)?;
    edge::run_with_http(
        |request| route(&scorer, request),
        |event| handle(&scorer, event),
    )
    .await
}
