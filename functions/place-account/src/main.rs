use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use place_account::{Placer, Request, place};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let placer = Placer::from_env(&shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<Request>| {
        place(&placer, event.payload)
    }))
    .await
}
