//! The governed regions, read once at start-up, and SDK configuration acting in one of them.

use aws_config::Region;
use domain::config::ConfigError;
use domain::regions::{self, Regions};

use crate::SdkConfig;

const SETTING: &str = "GOVERNED_REGIONS";

/// `GOVERNED_REGIONS` (the template's `GovernedRegions`): the listed regions and the home
/// region (the one `sdk` is configured for); unset or empty, the home region and every region
/// AWS enables by default, asked of EC2 (`ec2:DescribeRegions`, granted only then).
pub async fn governed(sdk: &SdkConfig) -> Result<Regions, ConfigError> {
    let home = sdk
        .region()
        .map(|r| r.as_ref().to_owned())
        .ok_or(ConfigError::Missing("AWS_REGION"))?;
    let listed =
        regions::parse_list(&std::env::var(SETTING).unwrap_or_default()).map_err(|reason| {
            ConfigError::Invalid {
                name: SETTING,
                reason,
            }
        })?;
    let others = match listed {
        Some(names) => names,
        None => {
            let out = aws_sdk_ec2::Client::new(sdk)
                .describe_regions()
                .send()
                .await
                .map_err(|e| ConfigError::Invalid {
                    name: SETTING,
                    reason: format!(
                        "empty, so the regions enabled by default were asked of EC2, which answered {}",
                        crate::error_message(&e)
                    ),
                })?;
            regions::enabled_by_default(
                out.regions().iter().filter_map(|r| {
                    Some((r.region_name()?, r.opt_in_status().unwrap_or_default()))
                }),
            )
        }
    };
    Ok(Regions::new(&home, others))
}

/// `sdk` (credentials, retries, endpoint) acting in `region`.
pub fn in_region(sdk: &SdkConfig, region: &str) -> SdkConfig {
    sdk.to_builder()
        .region(Region::new(region.to_owned()))
        .build()
}

/// Runs a concern's work in every governed region at once, each with `target` acting in that
/// region, and gathers its changes, each prefixed with its region (`eu-west-1: enabled …`). A
/// region's failure fails the whole and names the region; the others' work is idempotent and
/// done again on the retry.
pub async fn in_every_region<F, Fut>(
    target: &SdkConfig,
    regions: &Regions,
    each: F,
) -> Result<Vec<String>, crate::AssuranceError>
where
    F: Fn(SdkConfig, String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, crate::AssuranceError>>,
{
    let runs = regions.all().iter().map(|region| {
        let work = each(in_region(target, region), region.clone());
        async move {
            work.await
                .map(|changes| {
                    changes
                        .into_iter()
                        .map(|c| format!("{region}: {c}"))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.in_region(region))
        }
    });
    let done = futures::future::try_join_all(runs).await?;
    Ok(done.into_iter().flatten().collect())
}
