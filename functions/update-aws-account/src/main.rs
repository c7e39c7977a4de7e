use update_aws_account::{Updater, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let updater = Updater::from_sdk(&aws::sdk_config().await);
    edge::run(|request| handle(&updater, request)).await
}
