use create_aws_account::{Creator, Request, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let creator = Creator::from_env(&shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<Request>| {
        handle(&creator, event.payload)
    }))
    .await
}
