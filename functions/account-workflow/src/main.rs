use account_workflow::{Recorder, StepInput, record};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let recorder = Recorder::from_env(&shared::aws::sdk_config().await)?;
    run(service_fn(|event: LambdaEvent<StepInput>| {
        record(&recorder, event.payload)
    }))
    .await
}
