use create_account::{Creator, handle};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let creator = Creator::from_env(&shared::aws::sdk_config().await)?;
    run(service_fn(|request: Request| handle(&creator, request))).await
}
