//! Assurance concern: the default VPC removed while nothing uses it, as AWS Control Tower's
//! Account Factory for Terraform, the Landing Zone Accelerator and ADF do. A default VPC is open
//! by design — a default security group that admits its own members, a default network ACL
//! that admits everything (CIS AWS Foundations 5.1, 5.4), no flow log (3.7) — and nothing the
//! baseline puts in an account needs one. One a network interface is in (an instance, a load
//! balancer, a Lambda function, an endpoint) is some workload's, and is kept — closed as far as
//! it can be without cutting the workload off from what it reaches on purpose: its default
//! security group admits and sends nothing (CIS 5.4; resources in it need groups of their own),
//! and its default network ACL denies 0.0.0.0/0 and ::/0 the remote administration ports 22 and
//! 3389 ahead of its allow-all rule (5.1; the baseline owns its rules 1–4).
//!
//! In every governed region.
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

/// The ingress entries a kept default VPC's default network ACL gets ahead of its others:
/// (rule number, CIDR, TCP port), each a deny.
pub const ADMIN_PORT_DENIES: [(i32, &str, i32); 4] = [
    (1, "0.0.0.0/0", 22),
    (2, "0.0.0.0/0", 3389),
    (3, "::/0", 22),
    (4, "::/0", 3389),
];

/// An ingress entry of a network ACL, as the concern compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub rule_number: i32,
    pub deny: bool,
    pub cidr: String,
    pub protocol: String,
    pub ports: Option<(i32, i32)>,
}

/// The admin-port denies the ACL lacks: (rule number, CIDR, port, whether another entry holds
/// that number and is replaced).
pub fn missing_denies(ingress: &[AclEntry]) -> Vec<(i32, &'static str, i32, bool)> {
    ADMIN_PORT_DENIES
        .iter()
        .filter_map(|&(number, cidr, port)| {
            let held = ingress.iter().find(|e| e.rule_number == number);
            let wanted = AclEntry {
                rule_number: number,
                deny: true,
                cidr: cidr.to_owned(),
                protocol: "6".to_owned(),
                ports: Some((port, port)),
            };
            match held {
                Some(e) if *e == wanted => None,
                Some(_) => Some((number, cidr, port, true)),
                None => Some((number, cidr, port, false)),
            }
        })
        .collect()
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
                // Keeping it is not a change (a second run would say the same); closing it is.
                tracing::warn!(account, region, vpc = vpc.id, "{why}");
                let closed = close_kept(ec2, &vpc.id).await?;
                if !closed.is_empty() {
                    changes.push(format!("{why}, and closed: {}", closed.join("; ")));
                }
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

/// Closes a kept default VPC's default security group and its default network ACL's admin
/// ports. What was closed.
async fn close_kept(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Result<Vec<String>, AssuranceError> {
    let mut closed = Vec::new();
    let groups = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc))
        .filters(filter("group-name", "default"))
        .send()
        .await
        .concern(CONCERN)?;
    for group in groups.security_groups() {
        let id = group.group_id().unwrap_or_default();
        let (ingress, egress) = (group.ip_permissions(), group.ip_permissions_egress());
        if !ingress.is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(ingress.to_vec()))
                .send()
                .await
                .concern(CONCERN)?;
        }
        if !egress.is_empty() {
            ec2.revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(egress.to_vec()))
                .send()
                .await
                .concern(CONCERN)?;
        }
        if !ingress.is_empty() || !egress.is_empty() {
            closed.push(format!(
                "its default security group {id} admits and sends nothing ({} inbound and {} outbound rule(s) revoked)",
                ingress.len(),
                egress.len()
            ));
        }
    }
    let acls = ec2
        .describe_network_acls()
        .filters(filter("vpc-id", vpc))
        .filters(filter("default", "true"))
        .send()
        .await
        .concern(CONCERN)?;
    for acl in acls.network_acls() {
        let id = acl.network_acl_id().unwrap_or_default();
        let ingress: Vec<AclEntry> = acl
            .entries()
            .iter()
            .filter(|e| e.egress() == Some(false))
            .map(|e| AclEntry {
                rule_number: e.rule_number().unwrap_or_default(),
                deny: e.rule_action() == Some(&aws_sdk_ec2::types::RuleAction::Deny),
                cidr: e
                    .cidr_block()
                    .or(e.ipv6_cidr_block())
                    .unwrap_or_default()
                    .to_owned(),
                protocol: e.protocol().unwrap_or("-1").to_owned(),
                ports: e.port_range().and_then(|p| Some((p.from()?, p.to()?))),
            })
            .collect();
        let missing = missing_denies(&ingress);
        for &(number, cidr, port, replace) in &missing {
            let range = aws_sdk_ec2::types::PortRange::builder()
                .from(port)
                .to(port)
                .build();
            let v6 = cidr.contains(':');
            if replace {
                ec2.replace_network_acl_entry()
                    .network_acl_id(id)
                    .rule_number(number)
                    .protocol("6")
                    .rule_action(aws_sdk_ec2::types::RuleAction::Deny)
                    .egress(false)
                    .set_cidr_block((!v6).then(|| cidr.to_owned()))
                    .set_ipv6_cidr_block(v6.then(|| cidr.to_owned()))
                    .port_range(range)
                    .send()
                    .await
                    .concern(CONCERN)?;
            } else {
                ec2.create_network_acl_entry()
                    .network_acl_id(id)
                    .rule_number(number)
                    .protocol("6")
                    .rule_action(aws_sdk_ec2::types::RuleAction::Deny)
                    .egress(false)
                    .set_cidr_block((!v6).then(|| cidr.to_owned()))
                    .set_ipv6_cidr_block(v6.then(|| cidr.to_owned()))
                    .port_range(range)
                    .send()
                    .await
                    .concern(CONCERN)?;
            }
        }
        if !missing.is_empty() {
            closed.push(format!(
                "its default network ACL {id} denies 0.0.0.0/0 and ::/0 ports 22 and 3389 (rules 1-4)"
            ));
        }
    }
    Ok(closed)
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
    fn a_kept_default_acl_gets_the_admin_port_denies_it_lacks() {
        let allow_all = AclEntry {
            rule_number: 100,
            deny: false,
            cidr: "0.0.0.0/0".into(),
            protocol: "-1".into(),
            ports: None,
        };
        let missing = missing_denies(std::slice::from_ref(&allow_all));
        assert_eq!(missing.len(), 4);
        assert!(missing.iter().all(|(_, _, _, replace)| !replace));
        let mut done: Vec<AclEntry> = ADMIN_PORT_DENIES
            .iter()
            .map(|&(rule_number, cidr, port)| AclEntry {
                rule_number,
                deny: true,
                cidr: cidr.into(),
                protocol: "6".into(),
                ports: Some((port, port)),
            })
            .collect();
        done.push(allow_all);
        assert!(
            missing_denies(&done).is_empty(),
            "a second run changes nothing"
        );
        // Someone's rule 2: replaced by the baseline's.
        done[1].deny = false;
        assert_eq!(missing_denies(&done), [(2, "0.0.0.0/0", 3389, true)]);
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
