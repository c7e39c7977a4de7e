use onboard::{Onboarder, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let onboarder = Onboarder::from_env(&aws::sdk_config().await)?;
    edge::run_http(|request| route(&onboarder, request)).await
}
