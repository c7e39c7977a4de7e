use assure_cloudtrail::{Assurer, assure};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::assurance::ConcernInput;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let assurer = Assurer::from_env(shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<ConcernInput>| {
        assure(&assurer, event.payload)
    }))
    .await
}
