use discover::{Discoverer, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let discoverer = Discoverer::from_env(shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<Value>| {
        handle(&discoverer, event)
    }))
    .await
}
