use foundation_policy::{Bootstrap, Input, ensure};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let bootstrap = Bootstrap::from_env(shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<Input>| {
        ensure(&bootstrap, event.payload)
    }))
    .await
}
