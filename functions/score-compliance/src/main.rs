use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use score_compliance::{Scorer, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let scorer = Scorer::from_env(shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<Value>| {
        handle(&scorer, event)
    }))
    .await
}
