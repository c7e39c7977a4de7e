use suspend_aws_account::{Suspender, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let suspender = Suspender::from_env(&aws::sdk_config().await)?;
    edge::run(|request| handle(&suspender, request)).await
}
