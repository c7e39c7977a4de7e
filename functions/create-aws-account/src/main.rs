use create_aws_account::{Creator, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let creator = Creator::from_env(&aws::sdk_config().await)?;
    edge::run(|request| handle(&creator, request)).await
}
