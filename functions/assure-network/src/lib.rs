//! Assurance concern: the default VPC removed while nothing uses it, as AWS Control Tower's
//! Account Factory for Terraform, the Landing Zone Accelerator and ADF do. A default VPC is open
//! by design — a default security group that admits its own members, a default network ACL
//! that admits everything (CIS AWS Foundations 5.1, 5.4), no flow log (3.7) — and nothing the
//! baseline puts in an account needs one. One a network interface is in (an instance, a load
//! balancer, a Lambda function, an endpoint) is some workload's, and is kept.
//!
//! In the region the session works in (the deployment region), as the other regional concerns.
//! The foundation SCP denies everyone but the provisioning role `CreateDefaultVpc` and
//! `CreateDefaultSubnet`, so a removed default VPC stays removed.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_ec2::types::Filter;
use domain::assurance::{ConcernInput, ConcernResult};
use domain::config::ConfigError;
use domain::regions::Regions;

pub const CONCERN: &str = "network";

/// A default VPC and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultVpc {
    pub id: String,
    pub subnets: Vec<String>,
    pub internet_gateways: Vec<String>,
    /// Network interfaces in the VPC: each is something running there.
    pub interfaces: usize,
    /// What else keeps AWS from deleting it, or says someone built on it: security groups but
    /// the default one, route tables but the main one, network ACLs but the default one, VPC
    /// endpoints, NAT, egress-only and VPN gateways, peering connections.
    pub other_parts: Vec<String>,
}

/// What becomes of a default VPC (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its gateways detached and deleted, its subnets deleted, then the VPC (its main route
    /// table, default network ACL and default security group go with it).
    Remove,
    /// In use: kept, and why.
    Keep(String),
}

pub fn decide(vpc: &DefaultVpc) -> Decision {
    if vpc.interfaces > 0 {
        return Decision::Keep(format!(
            "default VPC {} is in use ({} network interface(s)): kept",
            vpc.id, vpc.interfaces
        ));
    }
    if !vpc.other_parts.is_empty() {
        return Decision::Keep(format!(
            "default VPC {} has been built on ({}): kept",
            vpc.id,
            vpc.other_parts.join(", ")
        ));
    }
    Decision::Remove
}

pub struct Assurer {
    pub provisioning: Provisioning,
    pub regions: Regions,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`.
    pub fn from_env(sdk: SdkConfig, regions: Regions) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            regions,
        })
    }
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let target = a
        .provisioning
        .into_account(&input.aws_account_id, aws::Session::AssureNetwork)
        .await?;
    let account = input.aws_account_id.as_str();
    let changes = aws::in_every_region(&target, &a.regions, |target, region| async move {
        assure_in_region(&aws_sdk_ec2::Client::new(&target), account, &region).await
    })
    .await?;
    Ok(ConcernResult::new(CONCERN, changes))
}

/// The default VPC of the region `ec2` acts in.
async fn assure_in_region(
    ec2: &aws_sdk_ec2::Client,
    account: &str,
    region: &str,
) -> Result<Vec<String>, AssuranceError> {
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("isDefault", "true"))
        .send()
        .await
        .concern(CONCERN)?;
    let mut changes = Vec::new();
    for id in vpcs.vpcs().iter().filter_map(|v| v.vpc_id()) {
        let vpc = read(ec2, id).await?;
        match decide(&vpc) {
            Decision::Keep(why) => {
                // Not a change: a second run would say the same. The next part of the
                // baseline (closing its default security group and network ACL) is issue 13's.
                tracing::warn!(account, region, vpc = vpc.id, "{why}");
            }
            Decision::Remove => {
                remove(ec2, &vpc).await?;
                changes.push(format!(
                    "removed the default VPC {} ({} subnet(s), {} internet gateway(s)): nothing used it",
                    vpc.id,
                    vpc.subnets.len(),
                    vpc.internet_gateways.len()
                ));
            }
        }
    }
    Ok(changes)
}

async fn read(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<DefaultVpc, AssuranceError> {
    let subnets = ec2
        .describe_subnets()
        .filters(filter("vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    let gateways = ec2
        .describe_internet_gateways()
        .filters(filter("attachment.vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    let interfaces = ec2
        .describe_network_interfaces()
        .filters(filter("vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    let mut other_parts = Vec::new();
    let groups = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    other_parts.extend(
        groups
            .security_groups()
            .iter()
            .filter(|g| g.group_name() != Some("default"))
            .filter_map(|g| g.group_id().map(|g| format!("security group {g}"))),
    );
    let tables = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    other_parts.extend(
        tables
            .route_tables()
            .iter()
            .filter(|t| !t.associations().iter().any(|a| a.main() == Some(true)))
            .filter_map(|t| t.route_table_id().map(|t| format!("route table {t}"))),
    );
    let acls = ec2
        .describe_network_acls()
        .filters(filter("vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    other_parts.extend(
        acls.network_acls()
            .iter()
            .filter(|n| n.is_default() != Some(true))
            .filter_map(|n| n.network_acl_id().map(|n| format!("network ACL {n}"))),
    );
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(filter("vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    other_parts.extend(
        endpoints
            .vpc_endpoints()
            .iter()
            .filter_map(|e| e.vpc_endpoint_id().map(|e| format!("endpoint {e}"))),
    );
    let nat = ec2
        .describe_nat_gateways()
        .filter(filter("vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    other_parts.extend(
        nat.nat_gateways()
            .iter()
            .filter(|g| g.state().is_none_or(|s| s.as_str() != "deleted"))
            .filter_map(|g| g.nat_gateway_id().map(|g| format!("NAT gateway {g}"))),
    );
    let vpn = ec2
        .describe_vpn_gateways()
        .filters(filter("attachment.vpc-id", id))
        .send()
        .await
        .concern(CONCERN)?;
    other_parts.extend(
        vpn.vpn_gateways()
            .iter()
            .filter_map(|g| g.vpn_gateway_id().map(|g| format!("VPN gateway {g}"))),
    );
    for side in ["requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id"] {
        let peering = ec2
            .describe_vpc_peering_connections()
            .filters(filter(side, id))
            .send()
            .await
            .concern(CONCERN)?;
        other_parts.extend(peering.vpc_peering_connections().iter().filter_map(|p| {
            p.vpc_peering_connection_id()
                .map(|p| format!("peering connection {p}"))
        }));
    }
    let egress_only = ec2
        .describe_egress_only_internet_gateways()
        .send()
        .await
        .concern(CONCERN)?;
    other_parts.extend(
        egress_only
            .egress_only_internet_gateways()
            .iter()
            .filter(|g| g.attachments().iter().any(|a| a.vpc_id() == Some(id)))
            .filter_map(|g| {
                g.egress_only_internet_gateway_id()
                    .map(|g| format!("egress-only gateway {g}"))
            }),
    );
    Ok(DefaultVpc {
        other_parts,
        id: id.to_owned(),
        subnets: subnets
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_id().map(str::to_owned))
            .collect(),
        internet_gateways: gateways
            .internet_gateways()
            .iter()
            .filter_map(|g| g.internet_gateway_id().map(str::to_owned))
            .collect(),
        interfaces: interfaces.network_interfaces().len(),
    })
}

/// Removes the VPC's parts, then the VPC. A part already gone (a run cut short) is not read
/// again: `read` lists only what is still there.
async fn remove(ec2: &aws_sdk_ec2::Client, vpc: &DefaultVpc) -> Result<(), AssuranceError> {
    // Subnets first: AWS refuses to delete one anything was launched into since the read, and
    // the VPC then keeps its internet gateway.
    for subnet in &vpc.subnets {
        ec2.delete_subnet()
            .subnet_id(subnet)
            .send()
            .await
            .concern(CONCERN)?;
    }
    for gateway in &vpc.internet_gateways {
        ec2.detach_internet_gateway()
            .internet_gateway_id(gateway)
            .vpc_id(&vpc.id)
            .send()
            .await
            .concern(CONCERN)?;
        ec2.delete_internet_gateway()
            .internet_gateway_id(gateway)
            .send()
            .await
            .concern(CONCERN)?;
    }
    ec2.delete_vpc()
        .vpc_id(&vpc.id)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vpc(interfaces: usize) -> DefaultVpc {
        DefaultVpc {
            id: "vpc-1".into(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            internet_gateways: vec!["igw-1".into()],
            interfaces,
            other_parts: Vec::new(),
        }
    }

    #[test]
    fn an_unused_default_vpc_is_removed_and_one_in_use_is_kept() {
        assert_eq!(decide(&vpc(0)), Decision::Remove);
        match decide(&vpc(2)) {
            Decision::Keep(why) => assert!(why.contains("2 network interface(s)"), "{why}"),
            other => panic!("{other:?}"),
        }
        let built_on = DefaultVpc {
            other_parts: vec!["security group sg-1".into()],
            ..vpc(0)
        };
        match decide(&built_on) {
            Decision::Keep(why) => assert!(why.contains("security group sg-1"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
