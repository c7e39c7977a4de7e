use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use register_foundation::{Input, Registrar, register};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let registrar = Registrar::from_env(&shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<Input>| {
        register(&registrar, event.payload)
    }))
    .await
}
