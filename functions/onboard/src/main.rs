use lambda_http::{Error, Request, run, service_fn};
use onboard::{Onboarder, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_tracing();
    let onboarder = Onboarder::from_env(&shared::aws::sdk_config().await)?;
    run(service_fn(|request: Request| handle(&onboarder, request))).await
}
