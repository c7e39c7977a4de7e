use account_workflow::{Recorder, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let recorder = Recorder::from_env(&aws::sdk_config().await)?;
    edge::run(|step| handle(&recorder, step)).await
}
